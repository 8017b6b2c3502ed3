//! Value parsers for the study's numeric flags: every number is finite and
//! in range, or clap prints a one-line error and the program exits with 2
//! before it starts anything.

fn float(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("{s} is not finite"))
    }
}

/// `s` as a number for which `ok` holds, or an error naming `range`.
fn within(s: &str, ok: impl Fn(f64) -> bool, range: &str) -> Result<f64, String> {
    let x = float(s)?;
    if ok(x) {
        Ok(x)
    } else {
        Err(format!("{x} is not in {range}"))
    }
}

/// A rate in requests per second: from 0.001 to 10 million.
pub fn rate(s: &str) -> Result<f64, String> {
    within(s, |x| (0.001..=1e7).contains(&x), "[0.001, 1e7] req/s")
}

/// A length of time in seconds: `> 0` and at most a week.
pub fn secs(s: &str) -> Result<f64, String> {
    within(s, |x| x > 0.0 && x <= 604_800.0, "(0, 604800] s")
}

/// A length of time in seconds that may be zero: `>= 0` and at most a week.
pub fn secs0(s: &str) -> Result<f64, String> {
    within(s, |x| (0.0..=604_800.0).contains(&x), "[0, 604800] s")
}

/// A load as a fraction of capacity: from 0.01 to 2.
pub fn load(s: &str) -> Result<f64, String> {
    within(
        s,
        |x| (0.01..=2.0).contains(&x),
        "[0.01, 2] (a fraction of capacity)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_finite_and_out_of_range() {
        for bad in ["inf", "-inf", "nan", "NaN", "0", "-1", "1e9", "x", ""] {
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert!(secs("nan").is_err() && secs("0").is_err() && secs("1e7").is_err());
        assert!(secs0("-0.1").is_err() && secs0("inf").is_err());
        assert!(load("0").is_err() && load("3").is_err() && load("nan").is_err());
        assert_eq!((rate("250").unwrap(), secs0("0").unwrap()), (250.0, 0.0));
        assert_eq!(load("0.95").unwrap(), 0.95);
    }
}
