// Book theme 1.4 puts its own sidebar buttons in the article header, but PyData theme 0.20 binds only the
// first `.primary-toggle` / `.secondary-toggle` on the page (its hidden navbar one), so on a phone the visible
// buttons did nothing (pydata-sphinx-theme#2451, sphinx-book-theme#988). Pass their clicks on to the bound ones.
document.addEventListener('DOMContentLoaded', () => {
  for (const cls of ['.primary-toggle', '.secondary-toggle']) {
    const [bound, ...others] = document.querySelectorAll(cls);
    for (const b of others) b.addEventListener('click', e => {
      // on a wide screen the Book theme's own handler collapses the primary sidebar instead
      if (cls === '.primary-toggle' && window.matchMedia('(min-width: 992px)').matches) return;
      e.preventDefault(); bound.click();
    });
  }
});
