"""The training-module specification's examples, run as written with `src.` -> `ebird_vae.`,
the bundled synthetic sample instead of kerala.txt, and few epochs."""
import matplotlib
matplotlib.use('Agg')

import pytest
import torch

from ebird_vae.synthetic import sample_path

@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path

def test_quick_start(in_tmp):
    from ebird_vae.models import VariationalAutoencoder
    from ebird_vae.data import load_ebird_data, create_species_matrix, split_train_val, create_dataloaders
    from ebird_vae.training import train_variational_autoencoder, get_device, set_seed

    # Set random seed for reproducibility
    set_seed(42)

    # Load and prepare data
    data = load_ebird_data(sample_path())
    matrix, species = create_species_matrix(data, min_species_observations=30)
    train_ds, val_ds = split_train_val(matrix, species, val_size=0.2)
    train_loader, val_loader = create_dataloaders(train_ds, val_ds, batch_size=128)

    # Create model
    model = VariationalAutoencoder(
        input_dimension=len(species),
        latent_dimension=16,
        hidden_dimension=512
    )

    # Auto-detect device
    device = get_device()

    # Train!
    history = train_variational_autoencoder(
        model,
        train_loader,
        val_loader,
        num_epochs=2,
        learning_rate=1e-3,
        noise_std=0.1,
        device=device,
        checkpoint_dir='checkpoints',
        save_every=1
    )

    # Plot training curves
    import matplotlib.pyplot as plt
    plt.plot(history['train_loss'], label='Train')
    plt.plot(history['val_loss'], label='Val')
    plt.legend()
    plt.show()

    assert sorted(history) == sorted(['train_loss', 'train_recon_loss', 'train_kl_loss', 'val_loss', 'val_recon_loss', 'val_kl_loss'])
    assert len(history['val_loss']) == 2
    assert (in_tmp/'checkpoints'/'checkpoint_epoch_2.pt').exists()

    # The specification's load recipe: load the checkpoint into a fresh model and optimizer, then train. A load only
    # loads the weights (it never arms a resume): the next call is a new run that starts from them.
    from ebird_vae.training import load_checkpoint
    model = VariationalAutoencoder(input_dimension=len(species), latent_dimension=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    checkpoint = load_checkpoint(filepath='checkpoints/checkpoint_epoch_2.pt', model=model, optimizer=optimizer, device='cpu')
    start_epoch = checkpoint['epoch'] + 1
    previous_history = checkpoint['history']
    assert start_epoch == 3 and len(previous_history['val_loss']) == 2
    history = train_variational_autoencoder(model, train_loader, val_loader, num_epochs=1, checkpoint_dir='finetune')
    assert len(history['val_loss']) == 1 and history['val_loss'][0] < previous_history['val_loss'][0]   # from the loaded weights
    # Continuing the run is asked for explicitly, and goes on at epoch 3 with the saved history
    history = train_variational_autoencoder(VariationalAutoencoder(input_dimension=len(species), latent_dimension=16),
                                            train_loader, val_loader, num_epochs=3, save_every=1, checkpoint_dir='checkpoints',
                                            resume='checkpoints/checkpoint_epoch_2.pt')
    assert history['val_loss'][:2] == previous_history['val_loss'] and len(history['val_loss']) == 3
    assert (in_tmp/'checkpoints'/'checkpoint_epoch_3.pt').exists()

def test_complete_pipeline(in_tmp):
    from ebird_vae.models import VariationalAutoencoder
    from ebird_vae.data import (
        load_ebird_data,
        create_species_matrix,
        split_train_val,
        create_dataloaders
    )
    from ebird_vae.training import (
        train_variational_autoencoder,
        get_device,
        set_seed,
        print_model_summary,
        save_checkpoint
    )
    import matplotlib.pyplot as plt

    # 1. Set random seed for reproducibility
    set_seed(42)

    # 2. Load and preprocess data
    print("Loading data...")
    data = load_ebird_data(sample_path(), nrows=500000)

    print("Creating species matrix...")
    matrix, species = create_species_matrix(
        data,
        min_species_observations=50
    )

    print("Splitting into train/val...")
    train_ds, val_ds = split_train_val(matrix, species, val_size=0.2)

    print("Creating DataLoaders...")
    train_loader, val_loader = create_dataloaders(
        train_ds, val_ds,
        batch_size=128,
        num_workers=4,
        pin_memory=True  # For GPU training
    )

    # 3. Create model
    print("\nCreating model...")
    model = VariationalAutoencoder(
        input_dimension=len(species),
        latent_dimension=16,
        hidden_dimension=512
    )

    print_model_summary(model)

    # 4. Setup training
    device = get_device()

    # 5. Train
    print("\nStarting training...")
    history = train_variational_autoencoder(
        model,
        train_loader,
        val_loader,
        num_epochs=2,
        learning_rate=1e-3,
        noise_std=0.1,
        device=device,
        checkpoint_dir='checkpoints/kerala_vae',
        save_every=1,
        print_every=5
    )

    # 6. Save final model
    import torch
    torch.save(model.state_dict(), 'vae_kerala_final.pt')

    # 7. Plot training curves
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))

    # Total loss
    axes[0].plot(history['train_loss'], label='Train')
    axes[0].plot(history['val_loss'], label='Val')
    axes[0].set_xlabel('Epoch')
    axes[0].set_ylabel('Total Loss')
    axes[0].set_title('Total Loss')
    axes[0].legend()

    # Reconstruction loss
    axes[1].plot(history['train_recon_loss'], label='Train')
    axes[1].plot(history['val_recon_loss'], label='Val')
    axes[1].set_xlabel('Epoch')
    axes[1].set_ylabel('Reconstruction Loss')
    axes[1].set_title('Reconstruction Loss (BCE)')
    axes[1].legend()

    # KL divergence
    axes[2].plot(history['train_kl_loss'], label='Train')
    axes[2].plot(history['val_kl_loss'], label='Val')
    axes[2].set_xlabel('Epoch')
    axes[2].set_ylabel('KL Divergence')
    axes[2].set_title('KL Divergence')
    axes[2].legend()

    plt.tight_layout()
    plt.savefig('training_curves.png', dpi=300)
    plt.show()

    print("\n✅ Training complete!")

    assert (in_tmp/'training_curves.png').stat().st_size > 10_000
    assert (in_tmp/'checkpoints'/'kerala_vae'/'checkpoint_epoch_2.pt').exists()
    state = torch.load('vae_kerala_final.pt', weights_only=True)
    assert state['encoder_network.0.weight'].shape == (512, len(species))
