//! The Porter (1980) stemmer, working on ASCII lowercase bytes: [`stem`]
//! and its steps and suffix rules.

/// Words longer than this are indexed unstemmed.
const MAX_STEM_LEN: usize = 32;

/// The Porter (1980) stemmer with the two later fixes (`bli`→`ble`,
/// `logi`→`log`). Only ASCII lowercase words of 3 to [`MAX_STEM_LEN`]
/// letters are stemmed; others come back unchanged.
pub(super) fn stem(word: &str) -> String {
    if word.len() <= 2 || word.len() > MAX_STEM_LEN || !word.bytes().all(|b| b.is_ascii_lowercase())
    {
        return word.to_owned();
    }
    let mut w = word.as_bytes().to_vec();
    step1(&mut w);
    step2to5(&mut w);
    w.into_iter().map(char::from).collect()
}

fn consonant(w: &[u8], i: usize) -> bool {
    match w[i] {
        b'a' | b'e' | b'i' | b'o' | b'u' => false,
        b'y' => i == 0 || !consonant(w, i - 1),
        _ => true,
    }
}

/// `m`: the number of vowel-consonant sequences.
fn measure(w: &[u8]) -> usize {
    let mut m = 0;
    let mut after_vowel = false;
    for i in 0..w.len() {
        let c = consonant(w, i);
        if c && after_vowel {
            m += 1;
        }
        after_vowel = !c;
    }
    m
}

fn has_vowel(w: &[u8]) -> bool {
    (0..w.len()).any(|i| !consonant(w, i))
}

fn double_consonant(w: &[u8]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && consonant(w, n - 1)
}

/// `*o`: ends consonant-vowel-consonant, the last not `w`, `x` or `y`.
fn cvc(w: &[u8]) -> bool {
    let n = w.len();
    n >= 3
        && consonant(w, n - 3)
        && !consonant(w, n - 2)
        && consonant(w, n - 1)
        && !matches!(w[n - 1], b'w' | b'x' | b'y')
}

/// If `w` ends with `from`: replaces it by `to` when the stem before it
/// passes `cond`, and returns whether it did. `None` if no match.
fn replace(w: &mut Vec<u8>, from: &str, to: &str, cond: impl Fn(&[u8]) -> bool) -> Option<bool> {
    let stem_len = w.len().checked_sub(from.len())?;
    if !w.ends_with(from.as_bytes()) {
        return None;
    }
    let ok = cond(&w[..stem_len]);
    if ok {
        w.truncate(stem_len);
        w.extend_from_slice(to.as_bytes());
    }
    Some(ok)
}

/// Applies the first rule whose suffix matches (the longest, as the
/// lists put longer suffixes first), if its condition holds.
fn first_rule(w: &mut Vec<u8>, rules: &[(&str, &str)], cond: impl Fn(&[u8]) -> bool) {
    for (from, to) in rules {
        if replace(w, from, to, &cond).is_some() {
            return;
        }
    }
}

pub(super) const STEP1A: &[(&str, &str)] = &[("sses", "ss"), ("ies", "i"), ("ss", "ss"), ("s", "")];
pub(super) const STEP2: &[(&str, &str)] = &[
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("bli", "ble"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
    ("logi", "log"),
];
pub(super) const STEP3: &[(&str, &str)] = &[
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
];
pub(super) const STEP4: &[&str] = &[
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
    "ism", "ate", "iti", "ous", "ive", "ize",
];

/// Steps 1a–1c: plurals, `-ed`, `-ing`, final `y`.
fn step1(w: &mut Vec<u8>) {
    first_rule(w, STEP1A, |_| true);

    let removed = if w.ends_with(b"eed") {
        replace(w, "eed", "ee", |s| measure(s) > 0);
        false
    } else {
        replace(w, "ed", "", has_vowel) == Some(true)
            || replace(w, "ing", "", has_vowel) == Some(true)
    };
    if removed {
        if w.ends_with(b"at") || w.ends_with(b"bl") || w.ends_with(b"iz") {
            w.push(b'e');
        } else if double_consonant(w) && !matches!(w.last(), Some(b'l' | b's' | b'z')) {
            w.pop();
        } else if measure(w) == 1 && cvc(w) {
            w.push(b'e');
        }
    }

    let n = w.len();
    if n >= 2 && w[n - 1] == b'y' && has_vowel(&w[..n - 1]) {
        w[n - 1] = b'i';
    }
}

/// Steps 2–5: derivational suffixes, then a final `e` and `ll`.
fn step2to5(w: &mut Vec<u8>) {
    first_rule(w, STEP2, |s| measure(s) > 0);
    first_rule(w, STEP3, |s| measure(s) > 0);
    for suffix in STEP4 {
        let matched = if *suffix == "ion" {
            replace(w, "ion", "", |s| {
                measure(s) > 1 && matches!(s.last(), Some(b's' | b't'))
            })
        } else {
            replace(w, suffix, "", |s| measure(s) > 1)
        };
        if matched.is_some() {
            break;
        }
    }

    if w.last() == Some(&b'e') {
        let stem = &w[..w.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !cvc(stem)) {
            w.pop();
        }
    }
    if measure(w) > 1 && double_consonant(w) && w.last() == Some(&b'l') {
        w.pop();
    }
}
