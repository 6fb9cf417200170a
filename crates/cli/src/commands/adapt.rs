//! `joule adapt`: NetAdapt on a trained model under latency, energy, MAC or weight budgets;
//! writes the family (ONNX + checkpoints), `state.json`, `summary.json` (docs/netadapt.md),
//! the latency table's validation and SVG plots. The flags are in `adapt_args.rs`.

use crate::output::outln;
use crate::progress::{bar, report_gate, say, style};
use anyhow::Result;
use joule_lab::adapt::{self, AdaptEvent};
use joule_lab::netadapt::Event;

pub use super::adapt_args::Args;

pub fn run(args: Args) -> Result<()> {
    joule_lab::init_threads(args.train_threads)?;
    let options = args.options()?;
    let progress = bar(
        args.iterations as u64,
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    );
    progress.set_prefix("iterations");
    let adapted = adapt::adapt(&options, |event| match event {
        AdaptEvent::BuildingTable { layers } => say(
            &progress,
            format!("building the latency table ({layers} layers on the grid)..."),
        ),
        AdaptEvent::Netadapt(Event::Iteration { iteration, .. }) => {
            progress.set_position(iteration as u64 - 1);
            progress.set_message("short-term fine-tuning the candidates");
        }
        AdaptEvent::Netadapt(Event::Chosen(r)) => say(&progress, adapt::describe(r)),
        AdaptEvent::Netadapt(Event::Unreachable(m)) => say(&progress, format!("unreachable: {m}")),
        AdaptEvent::Netadapt(Event::BaselineSearch) => {
            progress.set_message("choosing the uniform baseline's width multiplier")
        }
        AdaptEvent::Netadapt(Event::Baseline(b)) => say(
            &progress,
            format!(
                "baseline: width {:.3} (matched on {}): {}",
                b.width_multiplier,
                b.matched_on,
                adapt::describe(&b.record)
            ),
        ),
        AdaptEvent::Netadapt(Event::LongTerm {
            epoch,
            batch,
            batches,
        }) => {
            progress.set_style(style(
                "{prefix} [{bar:30}] {pos}/{len} batches ({elapsed}, eta {eta})",
            ));
            progress.set_prefix(format!("long-term fine-tuning, epoch {}", epoch + 1));
            progress.set_length(batches as u64);
            progress.set_position(batch as u64 + 1);
        }
    })?;
    progress.finish_and_clear();
    let state = &adapted.state;
    outln!("{:?}", state.status);
    for r in adapt::family(state) {
        outln!("{}", adapt::describe(&r));
    }
    if let Some(f) = &state.final_network {
        let test = 100.0 * f.test_accuracy.unwrap_or(f64::NAN);
        outln!(
            "final (long-term fine-tuned): {}; test accuracy {test:.2}%",
            adapt::describe(f)
        );
    }
    if let Some(b) = &state.baseline {
        outln!(
            "baseline (uniform width {:.3}, fine-tuned the same way): {}; test accuracy {:.2}%",
            b.width_multiplier,
            adapt::describe(&b.record),
            100.0 * b.record.test_accuracy.unwrap_or(f64::NAN)
        );
    }
    if let Some(gate) = &adapted.gate {
        report_gate(gate);
    }
    outln!("summary {}", args.out.join("summary.json").display());
    Ok(())
}
