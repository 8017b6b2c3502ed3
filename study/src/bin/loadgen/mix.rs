//! What loadgen asks for: a weighted mix of requests (method, path, body),
//! each with a key drawn uniformly or Zipf-skewed, planned up front from a
//! seed so that every run of a matrix asks for the same sequence.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use rand::SeedableRng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand::rngs::StdRng;

/// One kind of request: `WEIGHT METHOD PATH [BODY]`; `{key}` in the path
/// and the body becomes the request's key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Kind {
    pub(crate) weight: u32,
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) body: String,
}

/// Parse `WEIGHT METHOD PATH [BODY]` (the body is the rest of the line).
pub(crate) fn kind(s: &str) -> Result<Kind, String> {
    let mut it = s.trim().splitn(4, ' ');
    let (Some(w), Some(m), Some(p)) = (it.next(), it.next(), it.next()) else {
        return Err(format!("{s:?}: want `WEIGHT METHOD PATH [BODY]`"));
    };
    let weight: u32 = w
        .parse()
        .map_err(|_| format!("{s:?}: the weight {w:?} is not a whole number"))?;
    let method = http::Method::from_bytes(m.as_bytes())
        .map_err(|_| format!("{s:?}: {m:?} is not an HTTP method"))?;
    if !p.starts_with('/') {
        return Err(format!("{s:?}: the path must start with '/'"));
    }
    Ok(Kind {
        weight,
        method,
        path: p.to_string(),
        body: it.next().unwrap_or("").to_string(),
    })
}

/// The mix and the key distribution.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    kinds: Vec<Kind>,
    keys: u64,
    zipf: f64,
    seed: u64,
}

/// One planned request: which kind, which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) kind: u16,
    pub(crate) key: u64,
}

impl Mix {
    /// `kinds` (at least one with a weight above 0), keys in `0..keys`, Zipf
    /// exponent `zipf` (0: uniform).
    pub(crate) fn new(kinds: Vec<Kind>, keys: u64, zipf: f64, seed: u64) -> Result<Mix> {
        if kinds.iter().all(|k| k.weight == 0) {
            bail!("no request kind with a weight above 0");
        }
        if kinds.len() > usize::from(u16::MAX) {
            bail!("too many request kinds");
        }
        if !(zipf >= 0.0 && zipf.is_finite()) || keys == 0 {
            bail!("--zipf must be >= 0 and --keys > 0");
        }
        Ok(Mix {
            kinds,
            keys,
            zipf,
            seed,
        })
    }

    /// The first `n` requests.
    pub(crate) fn plan(&self, n: u64) -> Result<Vec<Planned>> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let which =
            WeightedIndex::new(self.kinds.iter().map(|k| k.weight)).context("request weights")?;
        let zipf = (self.zipf > 0.0)
            .then(|| rand_distr::Zipf::new(self.keys as f64, self.zipf))
            .transpose()
            .context("the Zipf distribution")?;
        let uniform = rand::distr::Uniform::new(0, self.keys).context("keys")?;
        Ok((0..n)
            .map(|_| Planned {
                kind: which.sample(&mut rng) as u16,
                // Zipf draws 1..=keys, most often 1: key 0 is the hottest.
                key: match &zipf {
                    Some(z) => (z.sample(&mut rng) as u64).saturating_sub(1),
                    None => uniform.sample(&mut rng),
                },
            })
            .collect())
    }

    /// The request `p` stands for; `measured` marks it as one of the
    /// measured window's (header `x-measured`).
    pub(crate) fn request(&self, p: Planned, measured: bool) -> Result<http::Request<Full<Bytes>>> {
        let k = &self.kinds[usize::from(p.kind)];
        let key = p.key.to_string();
        let mut b = http::Request::builder()
            .method(k.method.clone())
            .uri(k.path.replace("{key}", &key))
            .header(http::header::HOST, "loadgen");
        if measured {
            b = b.header("x-measured", "1");
        }
        let body = Bytes::from(k.body.replace("{key}", &key));
        Ok(b.body(Full::new(body))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_bad_ones_say_why() {
        let k = kind("3 PUT /item/{key} {\"v\": {key}}").unwrap();
        assert_eq!((k.weight, k.method.as_str()), (3, "PUT"));
        assert_eq!(
            (k.path.as_str(), k.body.as_str()),
            ("/item/{key}", "{\"v\": {key}}")
        );
        assert_eq!(kind("1 GET /").unwrap().body, "");
        assert!(kind("GET /x").unwrap_err().contains("WEIGHT METHOD PATH"));
        assert!(kind("x GET /x").unwrap_err().contains("weight"));
        assert!(kind("1 GET x").unwrap_err().contains("'/'"));
        assert!(kind("1 G@T /x").unwrap_err().contains("method"));
    }

    #[test]
    fn the_plan_follows_weights_and_skew_and_repeats_from_its_seed() {
        let kinds = vec![kind("3 GET /a/{key}").unwrap(), kind("1 POST /b").unwrap()];
        let m = Mix::new(kinds.clone(), 1000, 0.0, 7).unwrap();
        let p = m.plan(20_000).unwrap();
        assert_eq!(p, m.plan(20_000).unwrap());
        let gets = p.iter().filter(|r| r.kind == 0).count() as f64 / 20_000.0;
        assert!((gets - 0.75).abs() < 0.02, "{gets}");
        let hot = |p: &[Planned]| p.iter().filter(|r| r.key == 0).count() as f64 / p.len() as f64;
        assert!(hot(&p) < 0.01);
        let z = Mix::new(kinds, 1000, 1.1, 7).unwrap().plan(20_000).unwrap();
        assert!(
            hot(&z) > 0.1,
            "Zipf 1.1 over 1000 keys: key 0 is the hottest"
        );
        assert!(z.iter().all(|r| r.key < 1000));
        let r = m.request(Planned { kind: 0, key: 42 }, true).unwrap();
        assert_eq!(r.uri(), "/a/42");
        assert!(r.headers().contains_key("x-measured"));
        assert!(Mix::new(vec![kind("0 GET /").unwrap()], 1, 0.0, 1).is_err());
    }
}
