//! The embedded default dataset: a deterministic synthetic shop.
//!
//! Planted structure, so that sequential models have something real to learn that MostPop cannot:
//! - every product has accessories, and a bought product tends to be followed by its accessories,
//!   mostly in catalogue order (camera -> lens -> bag ...);
//! - every user has a persona that prefers a few categories;
//! - product popularity within a category is Zipf-like, and a share of clicks is uniform noise.

use crate::DataError;
use crate::catalogue::Catalogue;
use crate::dataset::Dataset;
use crate::rng::{Rng, SsiRng, derived};

const CATEGORIES: &[(&str, &str, [&str; 4])] = &[
    (
        "Cameras",
        "Camera",
        ["Lens", "Camera Bag", "Memory Card", "Tripod"],
    ),
    (
        "Phones",
        "Phone",
        ["Phone Case", "Screen Protector", "Charger", "Earbuds"],
    ),
    (
        "Laptops",
        "Laptop",
        ["Laptop Sleeve", "Mouse", "USB-C Hub", "Cooling Pad"],
    ),
    (
        "Coffee",
        "Espresso Machine",
        ["Coffee Beans", "Milk Frother", "Descaler", "Tamper"],
    ),
    (
        "Running",
        "Running Shoes",
        ["Running Socks", "Insoles", "Water Bottle", "Armband"],
    ),
    (
        "Cycling",
        "Bicycle",
        ["Helmet", "Bike Lights", "Bike Lock", "Pump"],
    ),
    (
        "Gaming",
        "Game Console",
        ["Controller", "Headset", "Game", "Charging Dock"],
    ),
    (
        "Garden",
        "Lawn Mower",
        ["Grass Catcher", "Spark Plug", "Spare Blades", "Mower Cover"],
    ),
    (
        "Kitchen",
        "Stand Mixer",
        ["Mixing Bowl", "Dough Hook", "Recipe Book", "Whisk"],
    ),
    (
        "Music",
        "Guitar",
        ["Guitar Strings", "Tuner", "Capo", "Gig Bag"],
    ),
    (
        "Camping",
        "Tent",
        ["Sleeping Bag", "Camping Stove", "Lantern", "Tent Pegs"],
    ),
    (
        "Baby",
        "Stroller",
        ["Rain Cover", "Cup Holder", "Stroller Organiser", "Sunshade"],
    ),
];
const BRANDS: &[&str] = &[
    "Aster", "Borealis", "Cobalt", "Dune", "Ember", "Fjord", "Granite", "Halo", "Ion", "Juniper",
    "Kestrel", "Lumen", "Mistral", "Nimbus", "Onyx", "Pike",
];

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    pub seed: u64,
    pub users: usize,
    /// At most 12.
    pub categories: usize,
    /// At most 16.
    pub products_per_category: usize,
    /// At most 4.
    pub accessories_per_product: usize,
    pub personas: usize,
    /// Categories each persona prefers.
    pub persona_categories: usize,
    pub min_len: usize,
    pub mean_extra_len: f64,
    pub max_len: usize,
    /// Chance that the next click is an accessory of the last product.
    pub p_accessory: f64,
    /// Chance that the next click is uniform noise.
    pub p_noise: f64,
    /// Chance that a new product comes from the persona's categories.
    pub p_persona: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 42,
            users: 3000,
            categories: 12,
            products_per_category: 8,
            accessories_per_product: 4,
            personas: 8,
            persona_categories: 3,
            min_len: 5,
            mean_extra_len: 6.0,
            max_len: 50,
            p_accessory: 0.55,
            p_noise: 0.1,
            p_persona: 0.85,
        }
    }
}

struct Product {
    id: u32,
    accessories: Vec<u32>,
}

impl SynthConfig {
    pub fn validate(&self) -> Result<(), DataError> {
        let checks = [
            (
                self.categories >= 1 && self.categories <= CATEGORIES.len(),
                "categories must be 1..=12",
            ),
            (
                self.products_per_category >= 1 && self.products_per_category <= BRANDS.len(),
                "products_per_category must be 1..=16",
            ),
            (
                self.accessories_per_product <= 4,
                "accessories_per_product must be 0..=4",
            ),
            (self.users >= 1, "users must be at least 1"),
            (self.personas >= 1, "personas must be at least 1"),
            (
                self.persona_categories >= 1 && self.persona_categories <= self.categories,
                "persona_categories must be 1..=categories",
            ),
            (
                self.min_len >= 3 && self.min_len <= self.max_len,
                "need 3 <= min_len <= max_len",
            ),
            (self.max_len <= 100_000, "max_len must be at most 100000"),
            (self.users <= 10_000_000, "users must be at most 10000000"),
            (
                self.mean_extra_len.is_finite() && self.mean_extra_len >= 0.0,
                "mean_extra_len must be finite and >= 0",
            ),
            (
                self.p_accessory + self.p_noise <= 1.0
                    && self.p_accessory >= 0.0
                    && self.p_noise >= 0.0,
                "need p_accessory, p_noise >= 0 and p_accessory + p_noise <= 1",
            ),
            (
                (0.0..=1.0).contains(&self.p_persona),
                "p_persona must be in [0, 1]",
            ),
            (
                self.users as f64
                    * (self.min_len as f64 + self.mean_extra_len).min(self.max_len as f64)
                    <= 2e8,
                "users x expected length (min_len + mean_extra_len, at most max_len) must be at most 2e8 interactions (about 2 GB of text)",
            ),
        ];
        match checks.iter().find(|c| !c.0) {
            Some((_, msg)) => Err(DataError::Invalid(format!(
                "synthetic shop settings: {msg}"
            ))),
            None => Ok(()),
        }
    }

    pub fn n_items(&self) -> usize {
        self.categories * self.products_per_category * (1 + self.accessories_per_product)
    }
}

/// Generates the shop. The same config always gives the same dataset, on every platform.
pub fn generate(cfg: &SynthConfig) -> Result<Dataset, DataError> {
    cfg.validate()?;
    let (cat, products, n_items) = build_catalogue(cfg);
    // Zipf-like popularity of products inside a category.
    let zipf: Vec<f64> = (0..cfg.products_per_category)
        .map(|r| 1.0 / (r as f64 + 1.0).powf(0.8))
        .collect();
    let zipf_total: f64 = zipf.iter().sum();
    let shop = Shop {
        products,
        n_items,
        zipf,
        zipf_total,
        personas: personas(cfg),
    };
    let sequences: Vec<Vec<u32>> = (0..cfg.users).map(|u| shop.sequence(cfg, u)).collect();
    // Items after the highest one bought (a small shop) are left out of the catalogue, so the
    // dataset file and its catalogue agree on the item count when read back.
    let used = sequences
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let mut cat = cat;
    cat.names.truncate(used as usize + 1);
    cat.categories.truncate(used as usize + 1);
    Ok(Dataset {
        name: "synthetic-shop".into(),
        user_ids: (1..=cfg.users as u32).collect(),
        sequences,
        n_items: n_items.min(used),
        catalogue: Some(cat),
    })
}

/// Names every product and its accessories (each product directly followed by its accessories),
/// returning the catalogue, the products per category and the largest item id.
fn build_catalogue(cfg: &SynthConfig) -> (Catalogue, Vec<Vec<Product>>, u32) {
    let mut cat = Catalogue::with_items(cfg.n_items());
    let mut products: Vec<Vec<Product>> = Vec::new();
    let mut next_id = 1u32;
    for (c, (cname, noun, accs)) in CATEGORIES.iter().take(cfg.categories).enumerate() {
        let mut list = Vec::new();
        for (p, brand) in BRANDS.iter().take(cfg.products_per_category).enumerate() {
            let model = format!("{}{}", (b'A' + c as u8) as char, 100 + 10 * p);
            let pid = next_id;
            next_id += 1;
            let pname = format!("{brand} {noun} {model}");
            cat.names[pid as usize] = pname.clone();
            cat.categories[pid as usize] = cname.to_string();
            let mut accessories = Vec::new();
            for acc in accs.iter().take(cfg.accessories_per_product) {
                cat.names[next_id as usize] = format!("{acc} for {brand} {noun} {model}");
                cat.categories[next_id as usize] = format!("{cname} accessories");
                accessories.push(next_id);
                next_id += 1;
            }
            list.push(Product {
                id: pid,
                accessories,
            });
        }
        products.push(list);
    }
    (cat, products, next_id - 1)
}

/// The categories each persona prefers (a partial shuffle per persona).
fn personas(cfg: &SynthConfig) -> Vec<Vec<usize>> {
    (0..cfg.personas)
        .map(|p| {
            let mut rng = derived(cfg.seed, 0x7065_7273, p as u64);
            let mut cats: Vec<usize> = (0..cfg.categories).collect();
            for i in 0..cfg.persona_categories {
                let j = rng.random_range(i..cats.len());
                cats.swap(i, j);
            }
            cats.truncate(cfg.persona_categories);
            cats
        })
        .collect()
}

/// What every user's clicks are drawn from.
struct Shop {
    /// Products per category.
    products: Vec<Vec<Product>>,
    n_items: u32,
    /// Relative popularity of a category's products, by rank.
    zipf: Vec<f64>,
    zipf_total: f64,
    personas: Vec<Vec<usize>>,
}

impl Shop {
    /// The clicks of user `u`, from the user's own random stream.
    fn sequence(&self, cfg: &SynthConfig, u: usize) -> Vec<u32> {
        let mut rng = derived(cfg.seed, 0x7573_6572, u as u64);
        let persona = &self.personas[rng.random_range(0..cfg.personas)];
        // Geometric extra length with the configured mean.
        let p_stop = 1.0 / (1.0 + cfg.mean_extra_len);
        let mut len = cfg.min_len;
        while len < cfg.max_len && !rng.random_bool(p_stop) {
            len += 1;
        }
        let mut seq: Vec<u32> = Vec::with_capacity(len);
        let mut last_product: Option<(usize, usize)> = None;
        let mut attempts = 0;
        while seq.len() < len && attempts < len * 20 {
            attempts += 1;
            let Some(item) = self.click(cfg, &mut rng, persona, &seq, &mut last_product) else {
                continue;
            };
            if seq.last() != Some(&item) && !seq.contains(&item) {
                seq.push(item);
            }
        }
        seq
    }

    /// One click: noise, an accessory of the last product, or a new product. `None` when the last
    /// product has no accessory left (it is then forgotten).
    fn click(
        &self,
        cfg: &SynthConfig,
        rng: &mut SsiRng,
        persona: &[usize],
        seq: &[u32],
        last_product: &mut Option<(usize, usize)>,
    ) -> Option<u32> {
        let r: f64 = rng.random();
        if r < cfg.p_noise {
            return Some(rng.random_range(1..=self.n_items));
        }
        if let (true, Some((c, p))) = (r < cfg.p_noise + cfg.p_accessory, *last_product) {
            let item = accessory(rng, &self.products[c][p], seq);
            if item.is_none() {
                *last_product = None;
            }
            return item;
        }
        let c = if rng.random_bool(cfg.p_persona) {
            persona[rng.random_range(0..persona.len())]
        } else {
            rng.random_range(0..cfg.categories)
        };
        let mut x = rng.random::<f64>() * self.zipf_total;
        let mut p = 0;
        while p + 1 < self.zipf.len() && x >= self.zipf[p] {
            x -= self.zipf[p];
            p += 1;
        }
        *last_product = Some((c, p));
        Some(self.products[c][p].id)
    }
}

/// An accessory of `product` not yet in `seq`, if any is left.
fn accessory(rng: &mut SsiRng, product: &Product, seq: &[u32]) -> Option<u32> {
    let fresh: Vec<u32> = product
        .accessories
        .iter()
        .copied()
        .filter(|a| !seq.contains(a))
        .collect();
    if fresh.is_empty() {
        return None;
    }
    // Mostly the next accessory in catalogue order, sometimes any of them.
    Some(if rng.random_bool(0.7) {
        fresh[0]
    } else {
        fresh[rng.random_range(0..fresh.len())]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalConfig, Evaluator};
    use crate::recommender::{MarkovChain, MostPop};

    #[test]
    fn deterministic_and_well_formed() {
        let cfg = SynthConfig {
            users: 300,
            ..Default::default()
        };
        let a = generate(&cfg).unwrap();
        let b = generate(&cfg).unwrap();
        assert_eq!(a.sequences, b.sequences);
        assert_eq!(a.n_items as usize, cfg.n_items());
        for s in &a.sequences {
            assert!(s.len() >= cfg.min_len && s.len() <= cfg.max_len);
            assert!(s.iter().all(|&i| i >= 1 && i <= a.n_items));
        }
        let c = generate(&SynthConfig { seed: 1, ..cfg }).unwrap();
        assert_ne!(a.sequences, c.sequences);
        let cat = a.catalogue.as_ref().unwrap();
        assert_eq!(cat.names[1], "Aster Camera A100");
        assert_eq!(cat.names[2], "Lens for Aster Camera A100");
        // Text round trip keeps the sequences.
        let (back, _) = Dataset::parse(&a.to_text(), std::path::Path::new("x")).unwrap();
        assert_eq!(back.sequences, a.sequences);
    }

    #[test]
    fn rejects_bad_config() {
        assert!(
            generate(&SynthConfig {
                categories: 99,
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            generate(&SynthConfig {
                p_noise: 0.9,
                p_accessory: 0.5,
                ..Default::default()
            })
            .is_err()
        );
        // Each size in range, their product days of work and tens of GB: refused at once.
        let huge = generate(&SynthConfig {
            users: 10_000_000,
            max_len: 100_000,
            mean_extra_len: 1e12,
            ..Default::default()
        })
        .unwrap_err();
        assert!(huge.to_string().contains("2e8 interactions"), "{huge}");
    }

    #[test]
    fn sequential_structure_is_learnable() {
        let ds = generate(&SynthConfig {
            users: 1500,
            ..Default::default()
        })
        .unwrap();
        let ev = Evaluator::new(&ds, EvalConfig::default());
        let pop = ev
            .evaluate(&ds, &MostPop::fit(&ds), &mut |_, _| {})
            .unwrap();
        let markov = ev
            .evaluate(&ds, &MarkovChain::fit(&ds), &mut |_, _| {})
            .unwrap();
        let (p, m) = (
            pop.sampled.ndcg_at(10).unwrap(),
            markov.sampled.ndcg_at(10).unwrap(),
        );
        assert!(
            m > p + 0.1,
            "Markov NDCG@10 {m:.3} should clearly beat MostPop {p:.3}"
        );
    }
}
