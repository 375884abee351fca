//! The bench's output: one `name value unit` line per figure on stdout,
//! printed as soon as it is known (progress and notes go to stderr), and
//! the ratio lines at the end from the figures kept.

use std::collections::BTreeMap;
use std::io::Write;

/// Collects and prints figures.
#[derive(Debug, Default)]
pub struct Report {
    figures: BTreeMap<String, f64>,
}

impl Report {
    /// Prints `name value unit` and keeps the value for the ratios.
    pub fn figure(&mut self, name: &str, value: f64, unit: &str) {
        println!("{name} {} {unit}", format_value(value));
        let _ = std::io::stdout().flush();
        self.figures.insert(name.to_string(), value);
    }

    /// A figure printed earlier, if any.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures.get(name).copied()
    }

    /// `ratio.cC.rR.<fw>_vs_floor` of readings per CPU-second for every
    /// case where the floor and another forwarder both ran.
    pub fn ratios(&mut self, forwarders: &[&str], connections: &[usize], rates: &[u64]) {
        let mut lines = Vec::new();
        for &c in connections {
            for &r in rates {
                let per_cpu = |fw: &str| self.get(&format!("{fw}.c{c}.r{r}.readings_per_cpu_s"));
                let Some(floor) = per_cpu("floor").filter(|v| *v > 0.0) else {
                    continue;
                };
                for fw in forwarders.iter().filter(|f| **f != "floor") {
                    if let Some(v) = per_cpu(fw) {
                        lines.push((format!("ratio.c{c}.r{r}.{fw}_vs_floor"), v / floor));
                    }
                }
            }
        }
        for (name, value) in lines {
            self.figure(&name, value, "x");
        }
    }
}

/// Prints a progress note on stderr.
pub fn note(text: &str) {
    eprintln!("# {text}");
}

/// About three significant digits, without exponents: 47612, 12.7, 0.273.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        // Three significant digits.
        let decimals = (2.0 - a.log10().floor()) as usize;
        format!("{v:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_naturally() {
        assert_eq!(format_value(47_612.4), "47612");
        assert_eq!(format_value(587.98), "588");
        assert_eq!(format_value(12.73), "12.7");
        assert_eq!(format_value(3.0), "3.00");
        assert_eq!(format_value(0.273), "0.273");
        assert_eq!(format_value(0.00026), "0.000260");
        assert_eq!(format_value(0.0), "0");
    }
}
