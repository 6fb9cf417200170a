//! Progress on stderr: an indicatif bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps drawn with `template`.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(style(template));
    bar
}

pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

/// A line above the bar, or on stderr when the bar is hidden (not a terminal).
pub fn say(bar: &ProgressBar, line: impl AsRef<str>) {
    if bar.is_hidden() {
        eprintln!("{}", line.as_ref())
    } else {
        bar.println(line.as_ref())
    }
}

/// Says how long measurements waited for the machine's normal speed, when it matters.
pub fn report_gate(gate: &joule_lab::lut::GateReport) {
    if gate.waited_ms >= 100.0 || gate.gave_up > 0 {
        eprintln!(
            "waited {:.1} s for the machine's normal speed (calibration {:.4} ms){}",
            gate.waited_ms / 1e3,
            gate.reference_ms.unwrap_or(f64::NAN),
            if gate.gave_up > 0 {
                format!("; {} sweeps ran without reaching it", gate.gave_up)
            } else {
                String::new()
            }
        );
    }
}
