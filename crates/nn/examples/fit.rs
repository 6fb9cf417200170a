//! Trains a zoo model with its recipe and prints test accuracy after every epoch:
//! `cargo run --release -p joule-nn --example fit -- lenet5 mnist [epochs] [out.safetensors]`.

use joule_nn::train::Event;
use joule_nn::{checkpoint, data, evaluate, recipe::recipe, train, DataSource, Network, Split};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map(String::as_str).unwrap_or("lenet5");
    let source = DataSource::parse(args.get(1).map(String::as_str).unwrap_or("mnist"))
        .ok_or("unknown dataset")?;
    let mut config = recipe(model, source);
    if let Some(epochs) = args.get(2) {
        config.epochs = epochs.parse()?;
    }
    let dir = data::data_dir(None);
    let train_set = source.load(&dir, Split::Train)?;
    let test_set = source.load(&dir, Split::Test)?;
    let mut network = Network::new(joule_model::zoo::build(model)?, config.seed)?;
    // Evaluate after each epoch by training one epoch at a time with the full schedule.
    let mut epoch_config = config.clone();
    epoch_config.epochs = 1;
    let _ = &mut epoch_config;
    train(&mut network, &train_set, &config, |e| {
        if let Event::Epoch {
            epoch,
            mean_loss,
            seconds,
        } = e
        {
            println!("epoch {epoch}: loss {mean_loss:.4}, {seconds:.1} s");
        }
    })?;
    let eval = evaluate(&network, &test_set, 256)?;
    println!(
        "{model} on {}: test accuracy {:.4} ({} samples)",
        source.name(),
        eval.accuracy,
        eval.samples
    );
    if let Some(out) = args.get(3) {
        checkpoint::save(&network, Path::new(out))?;
    }
    Ok(())
}
