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

    /// With repeats, each forwarder's median readings per CPU-second of a
    /// case under the plain name (`edgevisor.c10.r10000.readings_per_cpu_s`),
    /// so that one name means one figure however many runs made it.
    pub fn medians(&mut self, forwarders: &[&str], case: Case, repeat: u32) {
        if repeat < 2 {
            return;
        }
        for fw in forwarders {
            let values: Vec<f64> = Runs::new(repeat)
                .filter_map(|run| self.get(&per_cpu_name(&case.prefix(fw, run))))
                .collect();
            if let Some(median) = median(values) {
                self.figure(&per_cpu_name(&case.prefix(fw, None)), median, "readings/s");
            }
        }
    }

    /// `ratio.cC.rR.<fw>_vs_floor`: readings per CPU-second against the
    /// floor's. With repeats, each run's ratio (`ratio.cC.rR.runN.<fw>_vs_floor`,
    /// against the floor run beside it), then their median under the plain
    /// name and their spread as `.min` and `.max`.
    pub fn ratios(&mut self, forwarders: &[&str], case: Case, repeat: u32) {
        let Case {
            connections: c,
            rate: r,
        } = case;
        for fw in forwarders.iter().filter(|f| **f != "floor") {
            let mut ratios = Vec::new();
            for run in Runs::new(repeat) {
                let per_cpu = |name: &str| self.get(&per_cpu_name(&case.prefix(name, run)));
                let (Some(floor), Some(v)) = (per_cpu("floor").filter(|v| *v > 0.0), per_cpu(fw))
                else {
                    continue;
                };
                self.figure(
                    &format!("ratio.c{c}.r{r}{}.{fw}_vs_floor", run_suffix(run)),
                    v / floor,
                    "x",
                );
                ratios.push(v / floor);
            }
            if repeat < 2 {
                continue;
            }
            let name = format!("ratio.c{c}.r{r}.{fw}_vs_floor");
            let (min, max) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
            if let Some(median) = median(ratios) {
                self.figure(&name, median, "x");
                self.figure(&format!("{name}.min"), min, "x");
                self.figure(&format!("{name}.max"), max, "x");
            }
        }
    }
}

/// One cell of the throughput matrix.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Connections the load opens.
    pub connections: usize,
    /// Total offered readings per second.
    pub rate: u64,
}

impl Case {
    /// The name prefix of a run's figures: `edgevisor.c10.r10000`, or
    /// `edgevisor.c10.r10000.run2` for one of several runs.
    pub fn prefix(&self, forwarder: &str, run: Option<u32>) -> String {
        let run = run_suffix(run);
        format!("{forwarder}.c{}.r{}{run}", self.connections, self.rate)
    }
}

/// `.runN` in the names of one of several runs' figures; nothing for a
/// case run once.
fn run_suffix(run: Option<u32>) -> String {
    run.map(|n| format!(".run{n}")).unwrap_or_default()
}

/// The runs of one case: `None` alone when it runs once (plain names),
/// else `Some(1)..=Some(repeat)`.
pub struct Runs {
    next: u32,
    repeat: u32,
}

impl Runs {
    /// The runs of a case run `repeat` times.
    pub fn new(repeat: u32) -> Self {
        Self { next: 1, repeat }
    }
}

impl Iterator for Runs {
    type Item = Option<u32>;

    fn next(&mut self) -> Option<Option<u32>> {
        if self.next > self.repeat {
            return None;
        }
        let run = self.next;
        self.next += 1;
        Some((self.repeat > 1).then_some(run))
    }
}

pub fn per_cpu_name(prefix: &str) -> String {
    format!("{prefix}.readings_per_cpu_s")
}

/// The middle value (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
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

    #[test]
    fn runs_name_themselves_only_when_repeated() {
        assert_eq!(Runs::new(1).collect::<Vec<_>>(), vec![None]);
        assert_eq!(
            Runs::new(3).collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(3)]
        );
        let case = Case {
            connections: 10,
            rate: 10_000,
        };
        assert_eq!(case.prefix("floor", None), "floor.c10.r10000");
        assert_eq!(case.prefix("floor", Some(2)), "floor.c10.r10000.run2");
    }

    #[test]
    fn repeated_runs_give_a_median_ratio_and_its_spread() {
        let mut report = Report::default();
        let case = Case {
            connections: 10,
            rate: 10_000,
        };
        for (run, floor, ev) in [(1, 100.0, 70.0), (2, 100.0, 60.0), (3, 200.0, 180.0)] {
            report.figure(&per_cpu_name(&case.prefix("floor", Some(run))), floor, "r");
            report.figure(&per_cpu_name(&case.prefix("edgevisor", Some(run))), ev, "r");
        }
        report.medians(&["edgevisor", "floor"], case, 3);
        report.ratios(&["edgevisor", "floor"], case, 3);
        assert_eq!(
            report.get("edgevisor.c10.r10000.readings_per_cpu_s"),
            Some(70.0)
        );
        assert_eq!(
            report.get("ratio.c10.r10000.run3.edgevisor_vs_floor"),
            Some(0.9)
        );
        assert_eq!(report.get("ratio.c10.r10000.edgevisor_vs_floor"), Some(0.7));
        assert_eq!(
            report.get("ratio.c10.r10000.edgevisor_vs_floor.min"),
            Some(0.6)
        );
        assert_eq!(
            report.get("ratio.c10.r10000.edgevisor_vs_floor.max"),
            Some(0.9)
        );
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![1.0, 3.0]), Some(2.0));
    }
}
