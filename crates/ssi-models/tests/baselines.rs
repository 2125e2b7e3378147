//! S3-Rec and GREC: their self-supervised inputs on crafted sequences, and S3-Rec's pre-training
//! objective learns. (Both fine-tuned models are in `models.rs`'s every-model tests.)

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use ssi_data::rng::seeded;
use ssi_models::TrainBatch;
use ssi_models::grec::gap_inputs;
use ssi_models::s3rec::{S3RecConfig, pretrain_inputs};

const N: usize = 10;
const MASK: i64 = N as i64 + 1;

/// burn's device RNG is shared by the whole process: a test that initialises a model holds this
/// lock, so that a test running in parallel cannot draw between another's seed and its init
/// (which made S3-Rec's pre-training curve depend on thread timing).
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn s3rec_masks_items_and_cuts_segments_as_specified() {
    let a: &[u32] = &[1, 2, 3, 4, 5, 6];
    let b: &[u32] = &[7, 8];
    let seqs = [a, b];
    for (seed, p) in [(1, 0.0), (2, 0.3), (3, 0.9)] {
        let inp = pretrain_inputs(&seqs, N, 8, p, &mut seeded(seed));
        assert_eq!(inp.len, 6);
        let mut rows = Vec::new();
        for (r, s) in seqs.iter().enumerate() {
            let off = r * 6 + 6 - s.len();
            // Padding stays padding in every input.
            for v in [&inp.masked, &inp.seg_masked, &inp.seg_pos, &inp.seg_neg] {
                assert!(v[r * 6..off].iter().all(|&x| x == 0));
            }
            // MIP: masked positions are [MASK], the others the original items; at least one.
            let masked: Vec<usize> = (0..s.len())
                .filter(|&j| inp.masked[off + j] == MASK)
                .collect();
            assert!(
                !masked.is_empty(),
                "seed {seed}: row {r} has no masked item"
            );
            if p == 0.0 {
                assert_eq!(masked.len(), 1);
            }
            for j in 0..s.len() {
                if !masked.contains(&j) {
                    assert_eq!(inp.masked[off + j], s[j] as i64);
                }
            }
            rows.extend(masked.iter().map(|&j| (off + j, s[j])));
            // SP: one contiguous segment of 1..=n/2 items.
            let (start, end) = inp.spans[r];
            assert!(start >= off && end <= r * 6 + 6 && start < end);
            assert!(end - start <= (s.len() / 2).max(1));
            for j in 0..s.len() {
                let col = off + j;
                let inside = (start..end).contains(&col);
                let item = s[j] as i64;
                assert_eq!(inp.seg_masked[col], if inside { MASK } else { item });
                assert_eq!(inp.seg_pos[col], if inside { item } else { MASK });
                if !inside {
                    assert_eq!(inp.seg_neg[col], MASK);
                }
            }
            // The negative segment comes from the other sequence, in order (random items when
            // the other sequence is shorter than the segment).
            let neg: Vec<u32> = inp.seg_neg[start..end].iter().map(|&x| x as u32).collect();
            let other = seqs[1 - r];
            if neg.len() <= other.len() {
                assert!(
                    other.windows(neg.len()).any(|w| w == neg.as_slice()),
                    "row {r}: negative {neg:?} is not a segment of {other:?}"
                );
            } else {
                assert!(neg.iter().all(|&i| (1..=N as u32).contains(&i)));
            }
        }
        // MIP targets line up with the masked positions; negatives avoid the sequence.
        let got: Vec<(usize, u32)> = inp
            .mip_rows
            .iter()
            .zip(&inp.mip_pos)
            .map(|(&r, &i)| (r as usize, i as u32))
            .collect();
        assert_eq!(got, rows);
        for (&r, &neg) in inp.mip_rows.iter().zip(&inp.mip_neg) {
            let s = seqs[r as usize / 6];
            assert!(!s.contains(&(neg as u32)) && (1..=N as i64).contains(&neg));
        }
    }
}

/// Whatever the decoder reads, the state that predicts a gap (the position before it) depends
/// neither on the gap's item in the decoder input nor on anything after it: no leak of the target.
#[test]
fn grec_predicting_states_never_see_their_target() {
    let _rng = rng_lock();
    use burn::tensor::{Int, Tensor, TensorData};
    use ssi_models::grec::{DecoderInput, GrecConfig};
    let device = Device::flex();
    for input in [DecoderInput::Complement, DecoderInput::Sequence] {
        let model = GrecConfig::new(N)
            .with_hidden(8)
            .with_dropout(0.0)
            .with_decoder_input(Some(input))
            .init(&device);
        // One row: items 1 2 [gap] 4 5; the decoder holds the gap's item (3) at position 2, and
        // with `Sequence` every other item too.
        let enc = [1, 2, MASK, 4, 5];
        let dec = |target: i64| match input {
            DecoderInput::Complement => vec![MASK, MASK, target, MASK, MASK],
            DecoderInput::Sequence => vec![1, 2, target, 4, 5],
        };
        let states = |dec: Vec<i64>| {
            let t = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [1, 5]), &device);
            model
                .hidden_states(t(enc.to_vec()), t(dec))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (a, b) = (states(dec(3)), states(dec(7)));
        let h = 8;
        // Position 1 predicts the gap at 2: unchanged. Position 2 reads the item: changed.
        assert_eq!(a[h..2 * h], b[h..2 * h], "{input:?}: the target leaked");
        assert_ne!(a[2 * h..3 * h], b[2 * h..3 * h], "{input:?}: vacuous");
    }
}

#[test]
fn grec_gaps_and_their_complement() {
    let a: &[u32] = &[1, 2, 3, 4, 5];
    let b: &[u32] = &[6, 7];
    let seqs = [a, b];
    for seed in 0..5 {
        let inp = gap_inputs(&seqs, N, 8, 0.5, 0.0, &mut seeded(seed));
        assert_eq!(inp.len, 5);
        let mut want_rows = Vec::new();
        let mut want_targets = Vec::new();
        for (r, s) in seqs.iter().enumerate() {
            let off = r * 5 + 5 - s.len();
            assert!(inp.encoder[r * 5..off].iter().all(|&x| x == 0));
            assert!(inp.decoder[r * 5..off].iter().all(|&x| x == 0));
            // The first item is never a gap; at least one item is.
            assert_eq!(inp.encoder[off], s[0] as i64);
            let gaps: Vec<usize> = (0..s.len())
                .filter(|&j| inp.encoder[off + j] == MASK)
                .collect();
            assert!(!gaps.is_empty());
            for j in 0..s.len() {
                let item = s[j] as i64;
                if gaps.contains(&j) {
                    // The decoder holds the gap item; it is predicted from the position before.
                    assert_eq!(inp.decoder[off + j], item);
                    want_rows.push((off + j - 1) as i64);
                    want_targets.push(item - 1);
                } else {
                    assert_eq!(inp.encoder[off + j], item);
                    assert_eq!(inp.decoder[off + j], MASK);
                }
            }
        }
        assert_eq!(inp.rows, want_rows);
        assert_eq!(inp.targets, want_targets);
    }
    // last_gap_prob = 1: only the last item, as at prediction time.
    let inp = gap_inputs(&seqs, N, 8, 0.5, 1.0, &mut seeded(9));
    assert_eq!(inp.encoder, vec![1, 2, 3, 4, MASK, 0, 0, 0, 6, MASK]);
    assert_eq!(inp.rows, vec![3, 8]);
    assert_eq!(inp.targets, vec![4, 6]);
}

#[test]
fn s3rec_pretraining_lowers_its_loss() {
    let _rng = rng_lock();
    let device = Device::flex().autodiff();
    device.seed(4);
    let mut model = S3RecConfig::new(30)
        .with_hidden(16)
        .with_max_len(8)
        .with_dropout(0.0)
        .init(&device);
    let mut optim = AdamConfig::new().init();
    let seqs: Vec<Vec<u32>> = (0..16u32)
        .map(|u| (0..7u32).map(|t| (u * 3 + t) % 30 + 1).collect())
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let users: Vec<usize> = (0..refs.len()).collect();
    let mut rng = seeded(5);
    let mut losses = Vec::new();
    for _ in 0..200 {
        let loss = model.mip_sp_loss(
            TrainBatch {
                items: &refs,
                users: &users,
            },
            &mut rng,
        );
        let v: f32 = loss.clone().into_scalar();
        losses.push(v);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let first: f32 = losses[..20].iter().sum::<f32>() / 20.0;
    let last: f32 = losses[180..].iter().sum::<f32>() / 20.0;
    // Each pairwise term starts at ln 2 and is bounded below by −ln σ(1) ≈ 0.313.
    assert!((first - 1.5 * 0.693).abs() < 0.1, "first {first}");
    assert!(last < 0.8 * first, "MIP + SP loss {first} -> {last}");
}
