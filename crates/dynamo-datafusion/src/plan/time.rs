//! Comparisons of temporal columns → conditions on the attribute in its own
//! format.
//!
//! A temporal column is a `Timestamp` or `Date32` over a string or number
//! attribute ([`TimeFormat`]). A comparison with a literal instant becomes a
//! condition on the stored attribute with the literal rendered in the
//! attribute's format, only where the format's order is time order:
//!
//! - epoch numbers: the instant as an exact decimal number of units, so
//!   DynamoDB's numeric order answers exactly;
//! - ISO dates: the date, exactly (a bound between two days moves to the
//!   day it implies);
//! - UTC ISO text: bounds a second wide (text order is time order to the
//!   second; fractions of different lengths sort by bytes within it), a
//!   superset that the read re-checks;
//! - RFC 3339 with offsets: bounds a day wider on each side (the text's
//!   date is within a day of the UTC date), re-checked;
//! - patterns: nothing (the read re-checks the whole comparison).

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::predicate::{Atom, CmpOp, Cond, MAX_IN_VALUES, Path, Translated};
use crate::value::number::ExactNumber;
use crate::value::time::{
    NANOS_PER_DAY, Sortable, TimeFormat, fraction_text, render_date, render_second,
};

/// A literal's instant in nanoseconds since 1970-01-01T00:00:00Z: timestamps
/// of any unit and zone, and dates (their midnight, UTC).
pub(crate) fn literal_instant(e: &Expr) -> Option<i128> {
    let v = match e {
        Expr::Literal(v, _) => v.clone(),
        // A literal DataFusion has not folded yet.
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => v.cast_to(c.field.data_type()).ok()?,
            _ => return None,
        },
        _ => return None,
    };
    Some(match v {
        ScalarValue::TimestampSecond(Some(x), _) => i128::from(x) * 1_000_000_000,
        ScalarValue::TimestampMillisecond(Some(x), _) => i128::from(x) * 1_000_000,
        ScalarValue::TimestampMicrosecond(Some(x), _) => i128::from(x) * 1_000,
        ScalarValue::TimestampNanosecond(Some(x), _) => i128::from(x),
        ScalarValue::Date32(Some(d)) => i128::from(d) * NANOS_PER_DAY,
        ScalarValue::Date64(Some(ms)) => i128::from(ms) * 1_000_000,
        _ => return None,
    })
}

/// `column op t` on a column in `format`.
pub(crate) fn compare(path: Path, format: &TimeFormat, op: CmpOp, t: i128) -> Option<Translated> {
    match format.sortable() {
        Sortable::Exactly => exactly(path, format, op, t),
        Sortable::BySecond | Sortable::ByDay => {
            let by_day = format.sortable() == Sortable::ByDay;
            let (low, high) = (lower(t, by_day), upper(t, by_day, op == CmpOp::Lt));
            let cond = match op {
                CmpOp::Gt | CmpOp::Ge => cmp(path, CmpOp::Ge, low?),
                CmpOp::Lt | CmpOp::Le => {
                    let (op, bound) = high?;
                    cmp(path, op, bound)
                }
                CmpOp::Eq => between(path, low?, high?.1)?,
                CmpOp::Ne => return None,
            };
            Some(Translated { cond, exact: false })
        }
        Sortable::Not => None,
    }
}

/// `low <= column <= high` (or its negation) on a column in `format`.
pub(crate) fn between_instants(
    path: Path,
    format: &TimeFormat,
    low: i128,
    high: i128,
    negated: bool,
) -> Option<Translated> {
    if low > high {
        // SQL's answer is simply empty (or everything): left to SQL.
        return None;
    }
    let inside = match format.sortable() {
        Sortable::Exactly => match (exact_value(format, low), exact_value(format, high)) {
            (Some(low), Some(high)) => Translated {
                cond: between(path, low, high)?,
                exact: true,
            },
            // A bound between two stored values (dates): the two bounds it implies.
            _ => Translated {
                cond: Cond::And(vec![
                    exactly(path.clone(), format, CmpOp::Ge, low)?.cond,
                    exactly(path, format, CmpOp::Le, high)?.cond,
                ]),
                exact: true,
            },
        },
        Sortable::BySecond | Sortable::ByDay => {
            let by_day = format.sortable() == Sortable::ByDay;
            Translated {
                cond: between(path, lower(low, by_day)?, upper(high, by_day, false)?.1)?,
                exact: false,
            }
        }
        Sortable::Not => return None,
    };
    if negated {
        // The negation of a superset would drop rows.
        return inside.exact.then(|| Translated {
            cond: Cond::Not(Box::new(inside.cond)),
            exact: true,
        });
    }
    Some(inside)
}

/// `column IN (instants)` (or its negation) on a column in `format`.
pub(crate) fn in_instants(
    path: Path,
    format: &TimeFormat,
    instants: &[i128],
    negated: bool,
) -> Option<Translated> {
    if instants.is_empty() {
        return None;
    }
    match format.sortable() {
        Sortable::Exactly => {
            // Instants between two stored values (a time of day on a date
            // column) equal none: they drop out.
            let mut values: Vec<AttributeValue> = Vec::new();
            for t in instants {
                if let Some(v) = exact_value(format, *t) {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                } else if !aligned(format, *t) {
                    continue;
                } else {
                    return None;
                }
            }
            if values.is_empty() || values.len() > super::MAX_BATCH_KEYS {
                return None;
            }
            let cond = Cond::Atom(Atom::In { path, values });
            Some(Translated {
                cond: if negated {
                    Cond::Not(Box::new(cond))
                } else {
                    cond
                },
                exact: true,
            })
        }
        Sortable::BySecond | Sortable::ByDay if !negated && instants.len() <= MAX_IN_VALUES => {
            let parts = instants
                .iter()
                .map(|t| compare(path.clone(), format, CmpOp::Eq, *t).map(|t| t.cond))
                .collect::<Option<Vec<Cond>>>()?;
            Some(Translated {
                cond: if parts.len() == 1 {
                    parts.into_iter().next()?
                } else {
                    Cond::Or(parts)
                },
                exact: false,
            })
        }
        _ => None,
    }
}

/// True when `t` is a whole number of the column's units.
fn aligned(format: &TimeFormat, t: i128) -> bool {
    format.is_number() || t.rem_euclid(format.unit_nanos()) == 0
}

/// The stored value of instant `t`, when the format shows it exactly.
fn exact_value(format: &TimeFormat, t: i128) -> Option<AttributeValue> {
    match format {
        TimeFormat::Epoch(_) => {
            let scale = format.unit_nanos().ilog10();
            let n = ExactNumber::parse(&format!("{t}E-{scale}")).ok()?;
            n.fits_dynamodb().then(|| AttributeValue::N(n.to_string()))
        }
        TimeFormat::Date if aligned(format, t) => {
            render_date(i32::try_from(t.div_euclid(NANOS_PER_DAY)).ok()?).map(AttributeValue::S)
        }
        _ => None,
    }
}

/// `column op t` where the format's order is time order and its values
/// are whole units: exact.
fn exactly(path: Path, format: &TimeFormat, op: CmpOp, t: i128) -> Option<Translated> {
    let (op, value) = match exact_value(format, t) {
        Some(v) => (op, v),
        None => {
            // Between two stored values (dates only): the bound moves to
            // the value it implies, `floor`: `v > t` and `v >= t` are
            // `v > floor`, `v < t` and `v <= t` are `v <= floor`.
            let floor = t.div_euclid(format.unit_nanos()) * format.unit_nanos();
            let v = exact_value(format, floor)?;
            match op {
                CmpOp::Gt | CmpOp::Ge => (CmpOp::Gt, v),
                CmpOp::Lt | CmpOp::Le => (CmpOp::Le, v),
                CmpOp::Eq | CmpOp::Ne => return None,
            }
        }
    };
    Some(Translated {
        cond: cmp(path, op, value),
        exact: true,
    })
}

fn cmp(path: Path, op: CmpOp, value: AttributeValue) -> Cond {
    Cond::Atom(Atom::Cmp { path, op, value })
}

fn between(path: Path, low: AttributeValue, high: AttributeValue) -> Option<Cond> {
    // DynamoDB rejects BETWEEN with low > high.
    (crate::value::compare_values(&low, &high)? != std::cmp::Ordering::Greater)
        .then(|| Cond::Atom(Atom::Between { path, low, high }))
}

/// The least text of any value at or after `t`: the second's text (and the
/// fraction, without trailing zeros) for UTC text, the day before's date
/// for text with offsets.
fn lower(t: i128, by_day: bool) -> Option<AttributeValue> {
    let text = if by_day {
        render_date(i32::try_from(t.div_euclid(NANOS_PER_DAY) - 1).ok()?)?
    } else {
        let frac = fraction_text(t, 9, true);
        let second = render_second(t)?;
        if frac.is_empty() {
            second
        } else {
            format!("{second}.{frac}")
        }
    };
    Some(AttributeValue::S(text))
}

/// A bound above the text of every value at or before `t` (before it when
/// `strict`): `(op, bound)`.
fn upper(t: i128, by_day: bool, strict: bool) -> Option<(CmpOp, AttributeValue)> {
    if by_day {
        // Text with offsets: the date is at most a day after the UTC date;
        // `~` sorts after every character that can follow a date.
        let day = render_date(i32::try_from(t.div_euclid(NANOS_PER_DAY) + 1).ok()?)?;
        return Some((CmpOp::Le, AttributeValue::S(format!("{day}~"))));
    }
    let second = render_second(t)?;
    if strict && t.rem_euclid(1_000_000_000) == 0 {
        // Every text of `t`'s second is at or after it.
        return Some((CmpOp::Lt, AttributeValue::S(second)));
    }
    // `Z` sorts after `.`: every text of the second is at most `…SSZ`.
    Some((CmpOp::Le, AttributeValue::S(format!("{second}Z"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    const T: i128 = 1_764_490_500 * 1_000_000_000; // 2025-11-30T08:15:00Z

    fn f(name: &str) -> TimeFormat {
        name.parse().expect("format")
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn atom(t: Option<Translated>) -> Option<(Atom, bool)> {
        match t? {
            Translated {
                cond: Cond::Atom(a),
                exact,
            } => Some((a, exact)),
            _ => None,
        }
    }

    fn path() -> Path {
        vec!["ts".into()]
    }

    #[test]
    fn epoch_numbers_compare_exactly_even_with_fractions() {
        let secs = TimeFormat::Epoch(TimeUnit::Second);
        assert_eq!(
            atom(compare(path(), &secs, CmpOp::Gt, T + 500_000_000)),
            Some((
                Atom::Cmp {
                    path: path(),
                    op: CmpOp::Gt,
                    value: AttributeValue::N("1764490500.5".into())
                },
                true
            ))
        );
        let millis = f("epoch_millis");
        assert_eq!(
            atom(compare(path(), &millis, CmpOp::Le, T)).map(|(a, _)| a),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Le,
                value: AttributeValue::N("1764490500000".into())
            })
        );
        let between = atom(between_instants(
            path(),
            &secs,
            T,
            T + 60_000_000_000,
            false,
        ));
        assert!(
            matches!(between, Some((Atom::Between { .. }, true))),
            "{between:?}"
        );
    }

    #[test]
    fn dates_move_a_bound_between_days_to_the_day_it_implies() {
        let date = f("date");
        let day = |op, t| atom(compare(path(), &date, op, t)).map(|(a, _)| a);
        let midnight = 20_422 * NANOS_PER_DAY; // 2025-11-30
        assert_eq!(
            day(CmpOp::Ge, midnight),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Ge,
                value: s("2025-11-30")
            })
        );
        // After 08:15 on a day: the next days.
        assert_eq!(
            day(CmpOp::Ge, midnight + 1),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Gt,
                value: s("2025-11-30")
            })
        );
        assert_eq!(
            day(CmpOp::Lt, midnight + 1),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Le,
                value: s("2025-11-30")
            })
        );
        assert_eq!(day(CmpOp::Eq, midnight + 1), None);
        // An IN drops the instants no date equals.
        let t = in_instants(path(), &date, &[midnight, midnight + 1], false).expect("in");
        assert_eq!(
            t.cond,
            Cond::Atom(Atom::In {
                path: path(),
                values: vec![s("2025-11-30")]
            })
        );
    }

    #[test]
    fn utc_text_gets_bounds_a_second_wide_and_is_rechecked() {
        let iso = f("iso_millis");
        let ge = atom(compare(path(), &iso, CmpOp::Gt, T + 250_000_000)).expect("pushed");
        assert_eq!(
            ge,
            (
                Atom::Cmp {
                    path: path(),
                    op: CmpOp::Ge,
                    value: s("2025-11-30T08:15:00.25")
                },
                false
            )
        );
        // Before a whole second: strictly before its text.
        assert_eq!(
            atom(compare(path(), &iso, CmpOp::Lt, T)).map(|(a, _)| a),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Lt,
                value: s("2025-11-30T08:15:00")
            })
        );
        assert_eq!(
            atom(compare(path(), &iso, CmpOp::Le, T)).map(|(a, _)| a),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Le,
                value: s("2025-11-30T08:15:00Z")
            })
        );
        assert_eq!(
            atom(compare(path(), &iso, CmpOp::Eq, T)).map(|(a, _)| a),
            Some(Atom::Between {
                path: path(),
                low: s("2025-11-30T08:15:00"),
                high: s("2025-11-30T08:15:00Z")
            })
        );
        assert!(compare(path(), &iso, CmpOp::Ne, T).is_none());
        // Years without four digits have no text to compare with.
        assert!(compare(path(), &iso, CmpOp::Gt, -63_000_000_000 * 1_000_000_000).is_none());
    }

    #[test]
    fn the_bounds_hold_every_text_of_a_time_on_their_side() {
        // Texts of instants around T, with fractions of every length.
        let texts = |t: i128| -> Vec<String> {
            let second = render_second(t).expect("year");
            let mut out = vec![];
            for digits in 1..=9u8 {
                let frac = fraction_text(t, digits, false);
                if frac.trim_end_matches('0').len() <= usize::from(digits) {
                    out.push(format!("{second}.{frac}Z"));
                }
            }
            if t.rem_euclid(1_000_000_000) == 0 {
                out.push(format!("{second}Z"));
            }
            out
        };
        let iso = f("iso_nanos");
        let bound_holds = |op: CmpOp, bound: i128, value: i128, text: &str| {
            let Some((
                Atom::Cmp {
                    op: bop,
                    value: AttributeValue::S(b),
                    ..
                },
                _,
            )) = atom(compare(path(), &iso, op, bound))
            else {
                panic!("no bound for {op:?}");
            };
            let ord = text.as_bytes().cmp(b.as_bytes());
            let inside = match bop {
                CmpOp::Ge => ord.is_ge(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Lt => ord.is_lt(),
                _ => unreachable!(),
            };
            let truth = match op {
                CmpOp::Gt => value > bound,
                CmpOp::Ge => value >= bound,
                CmpOp::Lt => value < bound,
                CmpOp::Le => value <= bound,
                _ => unreachable!(),
            };
            assert!(!truth || inside, "{text} {op:?} {bound}: bound {bop:?} {b}");
        };
        let steps = [
            0,
            1,
            10,
            100_000,
            120_000_000,
            500_000_000,
            999_999_999,
            1_000_000_000,
        ];
        for d_bound in steps {
            for d_value in steps {
                for sign in [-1, 1] {
                    let bound = T + d_bound;
                    let value = T + sign * d_value;
                    for text in texts(value) {
                        for op in [CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le] {
                            bound_holds(op, bound, value, &text);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn text_with_offsets_gets_bounds_a_day_wider() {
        let iso = TimeFormat::Iso;
        assert_eq!(
            atom(compare(path(), &iso, CmpOp::Ge, T)).map(|(a, _)| a),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Ge,
                value: s("2025-11-29")
            })
        );
        assert_eq!(
            atom(compare(path(), &iso, CmpOp::Lt, T)).map(|(a, _)| a),
            Some(Atom::Cmp {
                path: path(),
                op: CmpOp::Le,
                value: s("2025-12-01~")
            })
        );
        // "2025-12-01T07:00:00+09:00" is 2025-11-30T22:00Z: inside.
        assert!("2025-12-01T07:00:00+09:00".as_bytes() <= "2025-12-01~".as_bytes());
        assert!(compare(path(), &f("%d/%m/%Y @ Europe/Paris"), CmpOp::Ge, T).is_none());
    }
}
