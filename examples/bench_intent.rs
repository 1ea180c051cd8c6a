//! Benchmark of intent tags (issue 21, point 4): generates labelled 公众号 messages across five
//! intents plus 其他 (with a little label noise, as real labelling has), then reports
//! - the segmentation dictionary's load time and the memory it adds,
//! - training time, model size (JSON) and vocabulary,
//! - on fresh held-out messages, with and without character bigrams and at three strengths of
//!   regularisation: accuracy, calibration error, and the share and precision of tags,
//! - 5-fold cross-validated precision/recall per intent (the console's table),
//! - classifying a stream of fresh messages on one core: messages per second and per-message
//!   p50/p99 latency (the budget is ≥ 50,000 messages per second per core).
//!
//! Run in release: `cargo run --release --example bench_intent`. Not a test: it only measures.
//! Shrink or grow with BENCH_TRAIN (labelled messages) and BENCH_STREAM (classified messages).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tagcast::domain::intent::evaluate::cross_validate_with;
use tagcast::domain::intent::model::TrainOptions;
use tagcast::domain::intent::{Classifier, Example, Thresholds, decide, tokenize};

mod common;

use common::{env_or, peak_rss_kib, percentile};

const PRODUCTS: [&str; 10] =
    ["精华液", "面霜", "眼霜", "防晒霜", "洗面奶", "面膜", "水乳套装", "vc精华", "小样", "卸妆油"];
const SKINS: [&str; 6] = ["油皮", "干皮", "敏感肌", "混油皮", "痘痘肌", "孕妇"];
const OPENERS: [&str; 8] = ["", "", "", "请问", "亲，", "你好，", "在吗 ", "哈喽 "];
/// Context followers put before the question, so lengths vary as real messages' do.
const LEADS: [&str; 10] = [
    "",
    "",
    "",
    "",
    "我上周在你们店买了{p}，",
    "朋友推荐过来的，",
    "看了今天的推文，",
    "刚刚下单了，",
    "用了一个多月了感觉还行，",
    "之前在直播间看到过，",
];
const CLOSERS: [&str; 10] = ["", "", "", "？", "?", "呀", "呢", "啊😊", "~", "！！"];

const PRICE: [&str; 10] = [
    "{p}多少钱",
    "{p}什么价格",
    "{p}怎么卖",
    "{p}价格是多少",
    "{n}瓶{p}多少钱",
    "{p}贵不贵",
    "{p}现在卖多少",
    "{p}{n}ml的多少钱",
    "￥{m}的是{p}吗",
    "{p}一套多少钱",
];
const AFTER_SALE: [&str; 10] = [
    "{p}怎么退货",
    "我买的{p}还没发货",
    "快递{n}天了还没到",
    "{p}用了过敏要退款",
    "收到的{p}漏液了",
    "订单{m}什么时候发货",
    "退款还没到账",
    "{p}发错了",
    "换货怎么弄",
    "物流一直没更新",
];
const DEAL: [&str; 10] = [
    "{p}有优惠吗",
    "有没有优惠券",
    "能便宜点吗",
    "{p}什么时候打折",
    "满{m}减多少",
    "买{p}有赠品吗",
    "会员有折扣吗",
    "新人券怎么领",
    "双十一{p}有活动吗",
    "优惠码在哪里领",
];
const SERUM: [&str; 10] = [
    "精华液适合{s}吗",
    "{s}用哪款精华",
    "精华怎么用",
    "精华和{p}先用哪个",
    "vc精华早上能用吗",
    "精华成分是什么",
    "精华能美白吗",
    "精华一天用几次",
    "{s}能用这个精华吗",
    "精华液保质期多久",
];
const SUNSCREEN: [&str; 8] = [
    "防晒霜适合{s}吗",
    "防晒要卸妆吗",
    "防晒spf多少",
    "{s}用哪款防晒",
    "防晒会不会闷痘",
    "防晒霜怎么涂",
    "SPF50的防晒油不油",
    "防晒可以当妆前乳吗",
];
const OTHER: [&str; 14] = [
    "你好",
    "谢谢",
    "今天天气不错",
    "哈哈哈",
    "明天见",
    "晚安",
    "收到",
    "你们是哪里的公司",
    "推文写得真好",
    "我想加群",
    "小编辛苦了",
    "早上好☀️",
    "Thank you",
    "嗯嗯好的",
];

const INTENTS: [(&str, &[&str]); 6] = [
    ("咨询价格", &PRICE),
    ("售后问题", &AFTER_SALE),
    ("想要优惠", &DEAL),
    ("产品兴趣/精华", &SERUM),
    ("产品兴趣/防晒", &SUNSCREEN),
    ("其他", &OTHER),
];

fn fill(template: &str, rng: &mut StdRng) -> String {
    let lead = LEADS.choose(rng).expect("non-empty");
    let body = format!("{lead}{template}")
        .replace("{p}", PRODUCTS.choose(rng).expect("non-empty"))
        .replace("{s}", SKINS.choose(rng).expect("non-empty"))
        .replace("{n}", &rng.gen_range(1..=5).to_string())
        .replace("{m}", &rng.gen_range(19..=999).to_string());
    let body = if rng.gen_bool(0.1) { to_full_width_digits(&body) } else { body };
    format!("{}{body}{}", OPENERS.choose(rng).expect("non-empty"), CLOSERS.choose(rng).expect("non-empty"))
}

fn to_full_width_digits(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_digit() { char::from_u32(c as u32 + 0xFEE0).unwrap_or(c) } else { c }).collect()
}

/// `n` labelled messages; 3 % carry a wrong label, as hurried labelling does.
fn generate(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (intent, templates) = INTENTS.choose(&mut rng).expect("non-empty");
            let text = fill(templates.choose(&mut rng).expect("non-empty"), &mut rng);
            let label = if rng.gen_bool(0.03) { INTENTS.choose(&mut rng).expect("non-empty").0 } else { intent };
            Example::labelled(text, (label != "其他").then_some(label))
        })
        .collect()
}

struct Fit {
    accuracy: f64,
    calibration_error: f64,
    coverage: f64,
    precision: f64,
}

/// How the model does on messages it never saw: top-intent accuracy, expected calibration error
/// (confidence against accuracy in ten bins, weighted by messages), and at the thresholds the
/// share of messages tagged and how many of those tags are right.
fn held_out_fit(model: &Classifier, held_out: &[Example], thresholds: &Thresholds) -> Fit {
    let mut bins = [(0usize, 0.0f64, 0usize); 10];
    let (mut right, mut tagged, mut tagged_right) = (0usize, 0usize, 0usize);
    for example in held_out {
        let prediction = model.predict(&example.text);
        let correct = prediction.best == example.intent;
        right += usize::from(correct);
        let bin = &mut bins[((prediction.confidence * 10.0) as usize).min(9)];
        bin.0 += 1;
        bin.1 += prediction.confidence;
        bin.2 += usize::from(correct);
        if let Some(intent) = decide(&prediction, thresholds) {
            tagged += 1;
            tagged_right += usize::from(example.intent.as_deref() == Some(intent));
        }
    }
    let n = held_out.len().max(1) as f64;
    let calibration_error =
        bins.iter().filter(|b| b.0 > 0).map(|&(_, confidence, correct)| (confidence - correct as f64).abs() / n).sum();
    Fit {
        accuracy: right as f64 / n,
        calibration_error,
        coverage: tagged as f64 / n,
        precision: tagged_right as f64 / tagged.max(1) as f64,
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn macro_f1(report: &tagcast::domain::intent::CvReport) -> f64 {
    let f1s: Vec<f64> = report
        .intents
        .iter()
        .map(|r| match (r.precision(), r.recall()) {
            (Some(p), Some(r)) if p + r > 0.0 => 2.0 * p * r / (p + r),
            _ => 0.0,
        })
        .collect();
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

fn main() {
    let train_n: usize = env_or("BENCH_TRAIN", 3_000);
    let stream_n: usize = env_or("BENCH_STREAM", 200_000);

    let rss_before = rss_kib().unwrap_or(0);
    let started = Instant::now();
    tokenize::warm_up();
    let load = started.elapsed();
    let rss_after = rss_kib().unwrap_or(0);
    println!(
        "dictionary load: {:.0} ms, RSS {} MiB -> {} MiB (+{} MiB)",
        load.as_secs_f64() * 1e3,
        rss_before / 1024,
        rss_after / 1024,
        rss_after.saturating_sub(rss_before) / 1024
    );

    let examples = generate(train_n, 1);
    let held_out = generate(train_n, 3);
    let thresholds = Thresholds::default();
    println!("\nheld-out {train_n} fresh messages; tagging at {}:", Thresholds::DEFAULT);
    for bigrams in [false, true] {
        for l2 in [0.3, 1.0, 3.0] {
            let options = TrainOptions { tokenizer: tokenize::Options { bigrams }, l2, ..TrainOptions::default() };
            let started = Instant::now();
            let model = Classifier::train_with(&examples, &options);
            let trained = started.elapsed();
            let fit = held_out_fit(&model, &held_out, &thresholds);
            println!(
                "  bigrams {bigrams:5} l2 {l2:3}: trained in {:4.0} ms; top-intent accuracy {:.3}, calibration error {:.3}; tags {:.0} % of messages, {:.3} of them right",
                trained.as_secs_f64() * 1e3,
                fit.accuracy,
                fit.calibration_error,
                fit.coverage * 100.0,
                fit.precision
            );
        }
    }

    let started = Instant::now();
    let report = cross_validate_with(&examples, 5, 7, &thresholds, &TrainOptions::default()).expect("enough examples");
    println!(
        "\n5-fold CV on {train_n} messages with the default options: macro F1 {:.3} ({:.1} s)",
        macro_f1(&report),
        started.elapsed().as_secs_f64()
    );
    for row in &report.intents {
        println!("  {}", row.summary_zh());
    }

    let started = Instant::now();
    let model = Classifier::train(&examples);
    let training = started.elapsed();
    let json = serde_json::to_string(&model).expect("serialisable");
    println!(
        "\ntraining on {train_n}: {:.0} ms; vocabulary {} tokens; model JSON {} KiB",
        training.as_secs_f64() * 1e3,
        model.vocabulary_len(),
        json.len() / 1024
    );

    let stream: Vec<String> = generate(stream_n, 2).into_iter().map(|e| e.text).collect();
    let started = Instant::now();
    let mut token_count = 0usize;
    for text in &stream {
        token_count += tokenize::tokens(text, tokenize::Options::default()).len();
    }
    let tokenising = started.elapsed();
    println!(
        "tokenising alone: {:.0} messages/s ({:.1} tokens a message)",
        stream_n as f64 / tokenising.as_secs_f64(),
        token_count as f64 / stream_n as f64
    );

    let mut latencies = Vec::with_capacity(stream_n);
    let mut tagged = 0usize;
    let started = Instant::now();
    for text in &stream {
        let t = Instant::now();
        let prediction = model.predict(text);
        if decide(&prediction, &thresholds).is_some() {
            tagged += 1;
        }
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    latencies.sort_unstable();
    println!(
        "classifying {stream_n} messages on one thread: {:.0} messages/s; p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {:.0} % tagged at {}",
        stream_n as f64 / total.as_secs_f64(),
        micros(percentile(&latencies, 0.50)),
        micros(percentile(&latencies, 0.99)),
        micros(*latencies.last().unwrap_or(&Duration::ZERO)),
        tagged as f64 * 100.0 / stream_n as f64,
        Thresholds::DEFAULT
    );
    println!("RSS now {} MiB, peak {} MiB", rss_kib().unwrap_or(0) / 1024, peak_rss_kib().unwrap_or(0) / 1024);
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
