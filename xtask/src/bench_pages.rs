//! The web pages' part of `cargo xtask bench web`: what a browser transfers for the dashboard
//! and the VM list, on a first visit (empty cache) and a repeat visit, and how long the VM
//! list takes to be usable, measured in headless Chromium (`mfv_tests::browser`) against the
//! same `mfv-web --dev` the API is benchmarked on.
//!
//! The figures come from the browser's own Resource Timing: the page's navigation entry and
//! every resource entry it loaded (scripts, styles, the API calls the page makes), summed by
//! `transferSize`, which counts headers and the body as it came over the wire (compressed)
//! and is 0 for what the cache answered. "Usable" is the `mfv-vm-list-usable` mark the VM
//! list page makes once its rows are drawn, in milliseconds from the start of navigation.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mfv_tests::browser::Browser;

/// The targets: bytes of a first visit (empty cache) and of a repeat visit, of either page,
/// in kB (1000 bytes); milliseconds to the VM list being usable (median).
pub const TARGET_FIRST_KB: u64 = 300;
pub const TARGET_REPEAT_KB: u64 = 50;
pub const TARGET_USABLE_MS: f64 = 300.0;

/// How long a page may take to show what it is waited for.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Loads of the VM list whose time to usable is measured.
pub const USABLE_RUNS: usize = 5;

/// The bytes of one visit of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// Bytes over the wire, headers included.
    pub transferred: u64,
    /// Requests made (the page and its resources).
    pub requests: u64,
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PageFigures {
    /// The dashboard: first visit, repeat visit.
    pub dashboard: (Visit, Visit),
    /// The VM list: first visit, repeat visit.
    pub vm_list: (Visit, Visit),
    /// Milliseconds from navigation to the VM list being usable, with a warm cache, per run.
    pub usable_ms: Vec<f64>,
}

impl PageFigures {
    /// The median of [`usable_ms`](Self::usable_ms).
    pub fn usable_median_ms(&self) -> f64 {
        median(&self.usable_ms)
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "dashboard {} / {} bytes, VM list {} / {} bytes (first / repeat visit); VM list \
             usable after {:.0} ms (median of {})",
            self.dashboard.0.transferred,
            self.dashboard.1.transferred,
            self.vm_list.0.transferred,
            self.vm_list.1.transferred,
            self.usable_median_ms(),
            self.usable_ms.len()
        )
    }

    /// One line per target: met or not, with the figure.
    pub fn verdicts(&self) -> Vec<String> {
        let judge = |met: bool| if met { "**met**" } else { "**not met**" };
        let kb = |visit: Visit| visit.transferred as f64 / 1000.0;
        let first = self.dashboard.0.transferred.max(self.vm_list.0.transferred);
        let repeat = self.dashboard.1.transferred.max(self.vm_list.1.transferred);
        let usable = self.usable_median_ms();
        vec![
            format!(
                "first visit under {TARGET_FIRST_KB} kB: {} (dashboard {:.1} kB, VM list \
                 {:.1} kB)",
                judge(first < TARGET_FIRST_KB * 1000),
                kb(self.dashboard.0),
                kb(self.vm_list.0)
            ),
            format!(
                "repeat visit under {TARGET_REPEAT_KB} kB: {} (dashboard {:.1} kB, VM list \
                 {:.1} kB)",
                judge(repeat < TARGET_REPEAT_KB * 1000),
                kb(self.dashboard.1),
                kb(self.vm_list.1)
            ),
            format!(
                "VM list usable in under {TARGET_USABLE_MS:.0} ms: {} (median {usable:.0} ms \
                 of {} loads)",
                judge(usable < TARGET_USABLE_MS),
                self.usable_ms.len()
            ),
        ]
    }

    /// The Markdown table of the visits, and the runs' times.
    pub fn table(&self) -> String {
        let row = |label: &str, (first, repeat): (Visit, Visit)| {
            format!(
                "| {label} | {} B in {} requests | {} B in {} requests |\n",
                first.transferred, first.requests, repeat.transferred, repeat.requests
            )
        };
        let runs: Vec<String> = self
            .usable_ms
            .iter()
            .map(|milliseconds| format!("{milliseconds:.0}"))
            .collect();
        format!(
            "| Headless Chromium | First visit (empty cache) | Repeat visit |\n\
             |---|---:|---:|\n{}{}\n\
             VM list usable (the page's `mfv-vm-list-usable` mark, from navigation, warm \
             cache): {} ms; median {:.0} ms.\n",
            row("Dashboard `/`", self.dashboard),
            row("VM list `/vms`", self.vm_list),
            runs.join(", "),
            self.usable_median_ms()
        )
    }
}

/// The median of `values` (0 when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        length if length % 2 == 1 => sorted[length / 2],
        length => (sorted[length / 2 - 1] + sorted[length / 2]) / 2.0,
    }
}

/// Sums what the page shown transferred, from its Resource Timing entries.
const VISIT_SCRIPT: &str = "\
    const entries = performance.getEntriesByType('navigation')\
        .concat(performance.getEntriesByType('resource'));\
    return {\
        transferred: entries.reduce((sum, entry) => sum + (entry.transferSize || 0), 0),\
        requests: entries.length,\
    };";

/// Signs in at `base` (`https://ADDRESS`) as `username` in a fresh browser and measures.
pub fn measure(base: &str, username: &str, password: &str) -> Result<PageFigures> {
    let browser = Browser::start()?;
    browser.open(&format!("{base}/login"))?;
    browser.type_into("#username", username, PAGE_TIMEOUT)?;
    browser.type_into("#password", password, PAGE_TIMEOUT)?;
    browser.click("#sign-in", PAGE_TIMEOUT)?;
    wait_until_at(&browser, &format!("{base}/"), PAGE_TIMEOUT)?;

    let dashboard_first = cold_visit(&browser, &format!("{base}/"), "#view .dashboard")?;
    let dashboard_repeat = visit(&browser, &format!("{base}/"), "#view .dashboard")?;
    let vm_list_first = cold_visit(&browser, &format!("{base}/vms"), "#view table")?;
    let vm_list_repeat = visit(&browser, &format!("{base}/vms"), "#view table")?;
    let mut usable_ms = Vec::with_capacity(USABLE_RUNS);
    for _ in 0..USABLE_RUNS {
        browser.open(&format!("{base}/vms"))?;
        usable_ms.push(usable_mark(&browser)?);
    }
    Ok(PageFigures {
        dashboard: (dashboard_first, dashboard_repeat),
        vm_list: (vm_list_first, vm_list_repeat),
        usable_ms,
    })
}

/// Empties the browser's cache, then [`visit`]s `url`.
fn cold_visit(browser: &Browser, url: &str, shown: &str) -> Result<Visit> {
    browser.clear_cache()?;
    visit(browser, url, shown)
}

/// Opens `url`, waits for `shown` to be there and the network to be quiet, and sums what
/// the visit transferred.
fn visit(browser: &Browser, url: &str, shown: &str) -> Result<Visit> {
    browser.open(url)?;
    browser
        .text(shown, PAGE_TIMEOUT)
        .with_context(|| format!("{url} showed no {shown}"))?;
    // The page's API calls start after its script ran: let them finish.
    std::thread::sleep(Duration::from_millis(500));
    let figures = browser.execute(VISIT_SCRIPT)?;
    let number = |name: &str| {
        figures[name]
            .as_u64()
            .with_context(|| format!("the page's {name} is not a number: {figures}"))
    };
    Ok(Visit {
        transferred: number("transferred")?,
        requests: number("requests")?,
    })
}

/// Waits for the VM list's `mfv-vm-list-usable` mark: its time from navigation, in ms.
fn usable_mark(browser: &Browser) -> Result<f64> {
    let start = Instant::now();
    loop {
        let mark = browser.execute(
            "const marks = performance.getEntriesByName('mfv-vm-list-usable');\
             return marks.length ? marks[0].startTime : null;",
        )?;
        if let Some(milliseconds) = mark.as_f64() {
            return Ok(milliseconds);
        }
        if start.elapsed() > PAGE_TIMEOUT {
            bail!(
                "the VM list made no mfv-vm-list-usable mark in {} s",
                PAGE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the page shown is `url`.
fn wait_until_at(browser: &Browser, url: &str, within: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let shown = browser.url()?;
        if shown == url {
            return Ok(());
        }
        if start.elapsed() > within {
            bail!("signing in did not lead to {url}: the page is {shown}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(transferred: u64, requests: u64) -> Visit {
        Visit {
            transferred,
            requests,
        }
    }

    #[test]
    fn the_verdicts_judge_the_larger_page_and_the_median() {
        let figures = PageFigures {
            dashboard: (visit(120_000, 9), visit(4_000, 6)),
            vm_list: (visit(310_000, 8), visit(60_000, 5)),
            usable_ms: vec![250.0, 90.0, 400.0],
        };
        assert_eq!(
            figures.verdicts(),
            [
                "first visit under 300 kB: **not met** (dashboard 120.0 kB, VM list 310.0 kB)",
                "repeat visit under 50 kB: **not met** (dashboard 4.0 kB, VM list 60.0 kB)",
                "VM list usable in under 300 ms: **met** (median 250 ms of 3 loads)",
            ]
        );
        let table = figures.table();
        assert!(
            table.contains("| VM list `/vms` | 310000 B in 8 requests | 60000 B in 5 requests |"),
            "{table}"
        );
        assert!(table.contains("250, 90, 400 ms; median 250 ms"), "{table}");
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
