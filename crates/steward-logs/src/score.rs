//! Scoring a parse against labelled truth: GA, PA, FGA and FTA, as defined in the
//! Loghub benchmark (Zhu et al. 2019; Khan et al. 2022; Jiang et al. 2024).
//!
//! - **GA** (grouping accuracy): a line is right when the set of lines in its predicted
//!   group is exactly the set of lines in its true group.
//! - **PA** (parsing accuracy): a line is right when its predicted template equals its
//!   true template token for token, `<*>` marking a variable and adjacent `<*>` one.
//! - **FGA**: F1 over groups; a predicted group is right when it equals a true group.
//! - **FTA**: F1 over templates; a predicted group counts when it is right and its
//!   template equals the true one.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// The four accuracies and the group counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Grouping accuracy.
    pub ga: f64,
    /// Parsing (message-level) accuracy.
    pub pa: f64,
    /// F1 of grouping accuracy.
    pub fga: f64,
    /// F1 of template accuracy.
    pub fta: f64,
    /// How many groups were predicted.
    pub predicted_groups: usize,
    /// How many groups the truth has.
    pub true_groups: usize,
}

/// One line's prediction and truth.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a, P, T> {
    /// The predicted group.
    pub group: P,
    /// The predicted template text.
    pub template: &'a str,
    /// The true group.
    pub true_group: T,
    /// The true template text.
    pub true_template: &'a str,
}

/// Scores predictions against truth, line by line. An empty input scores 1.0.
pub fn score<P: Eq + Hash + Copy, T: Eq + Hash + Copy>(lines: &[Labelled<'_, P, T>]) -> Scores {
    let n = lines.len();
    let mut true_sizes: HashMap<T, usize> = HashMap::new();
    for l in lines {
        *true_sizes.entry(l.true_group).or_default() += 1;
    }
    // For each predicted group: its size, the true groups it touches, and its template.
    struct Group<'a, T> {
        size: usize,
        first_true: T,
        pure: bool,
        template: &'a str,
        true_template: &'a str,
    }
    let mut groups: HashMap<P, Group<'_, T>> = HashMap::new();
    for l in lines {
        let g = groups.entry(l.group).or_insert(Group {
            size: 0,
            first_true: l.true_group,
            pure: true,
            template: l.template,
            true_template: l.true_template,
        });
        g.size += 1;
        if g.first_true != l.true_group {
            g.pure = false;
        }
    }
    let mut correct_lines = 0usize;
    let mut correct_groups = 0usize;
    let mut correct_templates = 0usize;
    for g in groups.values() {
        if g.pure && true_sizes.get(&g.first_true) == Some(&g.size) {
            correct_lines += g.size;
            correct_groups += 1;
            if normalise(g.template) == normalise(g.true_template) {
                correct_templates += 1;
            }
        }
    }
    let parsed = lines
        .iter()
        .filter(|l| normalise(l.template) == normalise(l.true_template))
        .count();
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let f1 = |correct: usize| {
        let p = ratio(correct, groups.len());
        let r = ratio(correct, true_sizes.len());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    };
    Scores {
        ga: ratio(correct_lines, n),
        pa: ratio(parsed, n),
        fga: f1(correct_groups),
        fta: f1(correct_templates),
        predicted_groups: groups.len(),
        true_groups: true_sizes.len(),
    }
}

/// The form two templates are compared in: whitespace runs are one space, and
/// adjacent `<*>` (`<*><*>`, or `<*> <*>` with only whitespace between) are one.
pub fn normalise(template: &str) -> String {
    let mut out = template.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let next = out.replace("<*><*>", "<*>").replace("<*> <*>", "<*>");
        if next == out {
            return out;
        }
        out = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l<'a>(
        group: u32,
        template: &'a str,
        true_group: u32,
        true_template: &'a str,
    ) -> Labelled<'a, u32, u32> {
        Labelled {
            group,
            template,
            true_group,
            true_template,
        }
    }

    #[test]
    fn perfect_parse_scores_one() {
        let lines = [
            l(1, "a <*>", 10, "a <*>"),
            l(1, "a <*>", 10, "a <*>"),
            l(2, "b", 20, "b"),
        ];
        let s = score(&lines);
        assert_eq!((s.ga, s.pa, s.fga, s.fta), (1.0, 1.0, 1.0, 1.0));
    }

    #[test]
    fn worked_example_split_and_merge() {
        // Truth: A = {0,1,2}, B = {3}, C = {4}. Prediction: {0,1} {2} {3,4}.
        // No predicted group equals a true group: GA 0, FGA 0.
        let lines = [
            l(1, "open <*>", 1, "open <*>"),
            l(1, "open <*>", 1, "open <*>"),
            l(2, "open x", 1, "open <*>"),
            l(3, "close <*>", 2, "close a"),
            l(3, "close <*>", 3, "close b"),
        ];
        let s = score(&lines);
        assert_eq!(s.ga, 0.0);
        assert_eq!(s.fga, 0.0);
        assert!(
            (s.pa - 0.4).abs() < 1e-12,
            "two lines have the right template"
        );
        assert_eq!((s.predicted_groups, s.true_groups), (3, 3));
    }

    #[test]
    fn worked_example_partly_right() {
        // Truth: A = {0,1}, B = {2}, C = {3}. Prediction: {0,1} right, {2,3} wrong.
        let lines = [
            l(1, "a <*> <*>", 1, "a <*>"),
            l(1, "a <*> <*>", 1, "a <*>"),
            l(2, "b <*>", 2, "b x"),
            l(2, "b <*>", 3, "b <*>"),
        ];
        let s = score(&lines);
        assert!((s.ga - 0.5).abs() < 1e-12);
        assert!((s.pa - 0.75).abs() < 1e-12);
        // One right group of two predicted and three true: P 1/2, R 1/3, F1 0.4.
        assert!((s.fga - 0.4).abs() < 1e-12);
        assert!((s.fta - 0.4).abs() < 1e-12, "its template is right too");
    }

    #[test]
    fn normalising_collapses_adjacent_wildcards() {
        assert_eq!(normalise("a  <*> <*>  b <*><*>:<*>"), "a <*> b <*>:<*>");
        assert_eq!(normalise("\"GET <*> <*>\" x"), "\"GET <*>\" x");
    }
}
