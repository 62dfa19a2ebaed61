//! What `EXPLAIN` says of a read: one list of labelled facts, gathered once
//! from the plan ([`facts`]), rendered in two formats — DataFusion's one
//! line of `key=value` fields ([`Fact::field`]) and a block of lines for a
//! person, names and values in place of placeholders ([`Fact::line`]).

use std::fmt;

use datafusion::physical_plan::{DisplayAs, DisplayFormatType};

use super::DynamoExec;
use crate::plan::cost::Basis;
use crate::plan::render::{display_value, resolve_placeholders};
use crate::plan::{Operation, ReadEstimate, ReadUnit, RenderedRequest, ScanPlan};

/// One thing `EXPLAIN` says of a read, in the order both formats use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fact {
    Operation(&'static str),
    Table(String),
    Index(String),
    /// A Query's key condition: as sent, and resolved for a person.
    KeyCondition {
        sent: String,
        resolved: String,
    },
    /// Several Queries, one per partition-key value.
    Queries {
        key: String,
        values: Vec<String>,
    },
    Descending,
    /// GetItem's key: (attribute, value) pairs.
    ItemKey(Vec<(String, String)>),
    /// BatchGetItem's number of keys.
    Keys(usize),
    /// The FilterExpression: as sent, and resolved for a person.
    Filter {
        sent: String,
        resolved: String,
    },
    /// The query's filters checked on the read's rows (DataFusion's form).
    Recheck(Vec<String>),
    /// Key lookups drop the items whose time to live (this attribute) is
    /// at or before `now` (Scans and Queries filter them in DynamoDB).
    Expired {
        attribute: String,
        now: i64,
    },
    /// The ProjectionExpression's attributes (`None`: all).
    Projection(Option<Vec<String>>),
    /// ExpressionAttributeNames, by placeholder number.
    Names(Vec<(String, String)>),
    /// ExpressionAttributeValues, by placeholder number.
    Values(Vec<(String, String)>),
    Limit(usize),
    PageSize(i32),
    Consistent,
    /// How the read is spread: Scan segments and the cap on requests in
    /// flight (when it has several units), its partitions, and the plan's
    /// partitions when an input names which this node reads.
    Layout {
        segments: Option<usize>,
        concurrency: Option<usize>,
        partitions: usize,
        of: Option<usize>,
    },
    Estimate {
        estimate: ReadEstimate,
        usd: String,
        price: f64,
        basis: Option<Basis>,
    },
    /// The capacity ceiling, and the query's estimate when above it.
    Ceiling {
        max: f64,
        over: Option<f64>,
    },
    /// What a join's keys chose at run time (`None`: not yet started).
    JoinKeys(Option<String>),
}

/// The facts of `plan` read by a node with `partitions` partitions (`of`
/// the plan's, when an input names them), with a join's choice when it
/// holds a join's filters.
pub(crate) fn facts(
    plan: &ScanPlan,
    partitions: usize,
    of: Option<usize>,
    recheck: Vec<String>,
    join_keys: Option<Option<String>>,
) -> Vec<Fact> {
    let r = first_request(plan);
    let names = r.names.clone().unwrap_or_default();
    let values = r.values.clone().unwrap_or_default();
    let resolve = |e: &str| resolve_placeholders(e, &names, &values);
    let mut facts = vec![
        Fact::Operation(plan.access.operation.name()),
        Fact::Table(plan.table.clone()),
    ];
    match &plan.access.operation {
        Operation::Query {
            index,
            partition_values,
            keys,
            ..
        } => {
            if let Some(ix) = index {
                facts.push(Fact::Index(ix.clone()));
            }
            if let Some(key) = &r.key_condition {
                facts.push(Fact::KeyCondition {
                    sent: key.clone(),
                    resolved: resolve(key),
                });
            }
            if partition_values.len() > 1 {
                facts.push(Fact::Queries {
                    key: keys.partition_key.name.clone(),
                    values: partition_values.iter().map(display_value).collect(),
                });
            }
            if !plan.scan_forward {
                facts.push(Fact::Descending);
            }
        }
        Operation::GetItem { key } => facts.push(Fact::ItemKey(
            key.iter()
                .map(|(n, v)| (n.clone(), display_value(v)))
                .collect(),
        )),
        Operation::BatchGetItem { keys } => facts.push(Fact::Keys(keys.len())),
        Operation::Scan => {}
    }
    if let Some(filter) = &r.filter {
        facts.push(Fact::Filter {
            sent: filter.clone(),
            resolved: resolve(filter),
        });
    }
    if !recheck.is_empty() {
        facts.push(Fact::Recheck(recheck));
    }
    if let (Some(e), Operation::GetItem { .. } | Operation::BatchGetItem { .. }) =
        (&plan.expiry, &plan.access.operation)
    {
        facts.push(Fact::Expired {
            attribute: e.attribute.clone(),
            now: e.now,
        });
    }
    facts.push(Fact::Projection(
        plan.request_projection().map(|p| p.attributes()),
    ));
    if let Some(names) = r.names {
        facts.push(Fact::Names(numbered(names.into_iter().collect())));
    }
    if let Some(values) = r.values {
        let shown = values
            .into_iter()
            .map(|(k, v)| (k, display_value(&v)))
            .collect();
        facts.push(Fact::Values(numbered(shown)));
    }
    if let Some(limit) = plan.limit {
        facts.push(Fact::Limit(limit));
    }
    if let Some(p) = plan.page_size {
        facts.push(Fact::PageSize(p));
    }
    if plan.consistent_read {
        facts.push(Fact::Consistent);
    }
    let units = plan.unit_count();
    facts.push(Fact::Layout {
        segments: (matches!(plan.access.operation, Operation::Scan) && units > 1).then_some(units),
        concurrency: (units > 1).then_some(plan.max_concurrency),
        partitions,
        of,
    });
    if let Some(estimate) = plan.estimate() {
        facts.push(Fact::Estimate {
            usd: estimate.usd_text(plan.price_per_million_rru),
            estimate,
            price: plan.price_per_million_rru,
            basis: plan.estimate_basis().cloned(),
        });
    }
    if let Some(max) = plan.max_rcu {
        facts.push(Fact::Ceiling {
            max,
            over: plan
                .ceiling_estimate()
                .filter(|q| q.rcu > max)
                .map(|q| q.rcu),
        });
    }
    if let Some(why) = join_keys {
        facts.push(Fact::JoinKeys(why));
    }
    facts
}

/// `feature@1 = search` as `feature = search`: a physical expression
/// without its columns' positions.
fn without_column_numbers(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    let mut after_word = false;
    while let Some(c) = chars.next() {
        if c == '@' && after_word && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            continue;
        }
        after_word = c.is_alphanumeric() || c == '_';
        out.push(c);
    }
    out
}

/// Placeholders (`#n3`, `:v12`) in their numbers' order.
fn numbered(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let number = |k: &str| k.get(2..).and_then(|n| n.parse::<usize>().ok());
    pairs.sort_by_key(|(k, _)| number(k).unwrap_or(usize::MAX));
    pairs
}

/// The first unit's request, rendered as the read renders it.
fn first_request(plan: &ScanPlan) -> RenderedRequest {
    let unit = plan
        .partitions
        .iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or(ReadUnit::Segment(0, 1));
    plan.render(&unit)
}

/// Where an estimate comes from, between `open` and `close` (empty when
/// DescribeTable alone gives it).
fn basis_text(basis: &Option<Basis>, open: &str, close: &str) -> String {
    match basis {
        Some(Basis::KeySample(n)) => format!("{open}key sample of {n} items{close}"),
        Some(Basis::Guess) => format!("{open}guessed: no key sample{close}"),
        _ => String::new(),
    }
}

impl Fact {
    /// The fact as DataFusion's `key=value` field (`None`: not shown there).
    pub(crate) fn field(&self) -> Option<String> {
        let pairs = |pairs: &[(String, String)], sep: &str| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}{sep}{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(match self {
            Fact::Operation(name) => format!("operation={name}"),
            Fact::Table(t) => format!("table={t}"),
            Fact::Index(ix) => format!("index={ix}"),
            Fact::KeyCondition { sent, .. } => format!("key_condition=[{sent}]"),
            Fact::Queries { values, .. } => {
                format!("queries={} (:v0 in [{}])", values.len(), values.join(", "))
            }
            Fact::Descending => "scan_index_forward=false".into(),
            Fact::ItemKey(key) => format!("key=[{}]", pairs(key, "=")),
            Fact::Keys(n) => format!("keys={n}"),
            Fact::Filter { sent, .. } => format!("filter=[{sent}]"),
            Fact::Projection(Some(attributes)) => {
                format!("projection=[{}]", attributes.join(", "))
            }
            Fact::Projection(None) => "projection=ALL".into(),
            Fact::Names(names) => format!("names={{{}}}", pairs(names, "=")),
            Fact::Values(values) => format!("values={{{}}}", pairs(values, "=")),
            Fact::Limit(n) => format!("limit={n}"),
            Fact::PageSize(n) => format!("page_size={n}"),
            Fact::Consistent => "consistent_read=true".into(),
            Fact::Layout {
                segments,
                concurrency,
                partitions,
                of,
            } => {
                let mut fields = Vec::new();
                if let Some(s) = segments {
                    fields.push(format!("segments={s}"));
                }
                if let Some(c) = concurrency {
                    fields.push(format!("max_concurrency={c}"));
                }
                fields.push(match of {
                    Some(of) => format!("partitions={partitions} of {of} (from its input)"),
                    None => format!("partitions={partitions}"),
                });
                fields.join(", ")
            }
            Fact::Estimate {
                estimate: e,
                usd,
                price,
                basis,
            } => format!(
                "estimate=[items≈{:.0}, rcu≈{:.1}, usd≈{usd} at {price}/M RRU{}]",
                e.items,
                e.rcu,
                basis_text(basis, ", ", "")
            ),
            Fact::Ceiling { max, over: None } => format!("max_rcu={max}"),
            Fact::Ceiling {
                max,
                over: Some(rcu),
            } => format!("max_rcu={max} (query estimate {rcu:.1} is above it: refused)"),
            Fact::Recheck(filters) => format!("recheck=[{}]", filters.join(", ")),
            Fact::Expired { attribute, now } => {
                format!("hide_expired=[{attribute} <= {now}, on the items]")
            }
            Fact::JoinKeys(Some(why)) => format!("join_keys=[{why}]"),
            Fact::JoinKeys(None) => "join_keys=[from the join's build side, at run time]".into(),
        })
    }

    /// The fact as a labelled line for a person (`None`: not shown there).
    pub(crate) fn line(&self) -> Option<(&'static str, String)> {
        Some(match self {
            Fact::Operation(name) => ("operation", name.to_string()),
            Fact::Table(t) => ("table", t.clone()),
            Fact::Index(ix) => ("index", ix.clone()),
            Fact::KeyCondition { resolved, .. } => ("key", resolved.clone()),
            Fact::Queries { key, values } => (
                "queries",
                format!("{}, one per {key} in [{}]", values.len(), values.join(", ")),
            ),
            Fact::Descending => ("order", "descending sort key".into()),
            Fact::ItemKey(key) => (
                "key",
                key.iter()
                    .map(|(n, v)| format!("{n} = {v}"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
            Fact::Keys(n) => ("keys", format!("{n} full keys")),
            Fact::Filter { resolved, .. } => ("filter", resolved.clone()),
            Fact::Projection(Some(attributes)) => ("projection", attributes.join(", ")),
            Fact::Projection(None) => ("projection", "all attributes".into()),
            Fact::Limit(n) => ("limit", n.to_string()),
            Fact::Consistent => ("consistent", "strongly consistent reads".into()),
            Fact::Layout {
                segments,
                concurrency,
                partitions,
                ..
            } => {
                let mut layout = String::new();
                if let Some(s) = segments {
                    layout.push_str(&format!("{s} segments, "));
                }
                if let Some(c) = concurrency {
                    layout.push_str(&format!("up to {c} requests in flight, "));
                }
                let plural = if *partitions == 1 { "" } else { "s" };
                layout.push_str(&format!("{partitions} partition{plural}"));
                ("reads", layout)
            }
            Fact::Estimate {
                estimate: e,
                usd,
                price,
                basis,
            } => (
                "estimate",
                format!(
                    "~{:.0} items, ~{:.1} RCU, ~${usd} at ${price}/M RRU{}",
                    e.items,
                    e.rcu,
                    basis_text(basis, " (", ")")
                ),
            ),
            Fact::Ceiling { max, over } => (
                "ceiling",
                match over {
                    Some(rcu) => {
                        format!("{max} RCU: the query's estimate {rcu:.1} is above it, refused")
                    }
                    None => format!("{max} RCU"),
                },
            ),
            Fact::Recheck(filters) => (
                "rechecks",
                filters
                    .iter()
                    .map(|f| without_column_numbers(f))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
            Fact::Expired { attribute, now } => (
                "expired",
                format!("items with {attribute} <= {now} are dropped after the read"),
            ),
            Fact::Names(_) | Fact::Values(_) | Fact::PageSize(_) | Fact::JoinKeys(_) => {
                return None;
            }
        })
    }
}

impl DynamoExec {
    /// What `EXPLAIN` says of this read.
    fn facts(&self) -> Vec<Fact> {
        let of = self.input.is_some().then_some(self.plan.partitions.len());
        let join_keys = (!self.join_filters.is_empty()).then(|| self.join_choice.why());
        let recheck = self
            .recheck
            .iter()
            .flat_map(|r| r.filters())
            .map(ToString::to_string)
            .collect();
        facts(&self.plan, self.output_partitions(), of, recheck, join_keys)
    }

    /// The request for a person: (label, value) lines with names and values
    /// in place of their placeholders — what `EXPLAIN FORMAT tree` shows,
    /// and `dynamo-sql` prints as a block.
    ///
    /// ```no_run
    /// # fn show(exec: &dynamo_datafusion::DynamoExec) {
    /// for (label, value) in exec.request_lines() {
    ///     println!("{label:>12}: {value}");
    /// }
    /// // operation: Query
    /// //     table: UserEngagement
    /// //       key: userId = "123015" AND eventTime > 1762000000
    /// # }
    /// ```
    pub fn request_lines(&self) -> Vec<(&'static str, String)> {
        self.facts().iter().filter_map(Fact::line).collect()
    }

    /// The rendered request, as `EXPLAIN` shows it.
    pub fn describe(&self) -> String {
        let fields: Vec<String> = self.facts().iter().filter_map(Fact::field).collect();
        fields.join(", ")
    }
}

impl DisplayAs for DynamoExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        if t == DisplayFormatType::TreeRender {
            // `EXPLAIN FORMAT tree`: one `label=value` line each, in the node's box.
            for (label, value) in self.request_lines() {
                writeln!(f, "{label}={value}")?;
            }
            return Ok(());
        }
        write!(f, "DynamoExec: {}", self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate() -> Fact {
        Fact::Estimate {
            estimate: ReadEstimate {
                items: 14.0,
                rcu: 1.0,
                requests: 1,
            },
            usd: "0.00000012".into(),
            price: 0.125,
            basis: Some(Basis::KeySample(1995)),
        }
    }

    #[test]
    fn one_fact_renders_as_a_field_and_as_a_line() {
        let queries = Fact::Queries {
            key: "userId".into(),
            values: vec!["\"a\"".into(), "\"b\"".into()],
        };
        assert_eq!(
            queries.field().as_deref(),
            Some("queries=2 (:v0 in [\"a\", \"b\"])")
        );
        assert_eq!(
            queries.line(),
            Some(("queries", "2, one per userId in [\"a\", \"b\"]".to_string()))
        );
        assert_eq!(
            estimate().field().as_deref(),
            Some(
                "estimate=[items≈14, rcu≈1.0, usd≈0.00000012 at 0.125/M RRU, key sample of 1995 items]"
            )
        );
        assert_eq!(
            estimate().line().map(|l| l.1).unwrap_or_default(),
            "~14 items, ~1.0 RCU, ~$0.00000012 at $0.125/M RRU (key sample of 1995 items)"
        );
    }

    #[test]
    fn placeholders_and_page_size_are_only_in_the_field_format() {
        let names = Fact::Names(numbered(vec![
            ("#n10".into(), "b".into()),
            ("#n2".into(), "a".into()),
        ]));
        assert_eq!(names.field().as_deref(), Some("names={#n2=a, #n10=b}"));
        assert_eq!(names.line(), None);
        assert_eq!(Fact::PageSize(5).line(), None);
        assert_eq!(Fact::JoinKeys(None).line(), None);
    }

    #[test]
    fn the_layout_is_three_fields_or_one_line() {
        let layout = Fact::Layout {
            segments: Some(4),
            concurrency: Some(64),
            partitions: 2,
            of: Some(4),
        };
        assert_eq!(
            layout.field().as_deref(),
            Some("segments=4, max_concurrency=64, partitions=2 of 4 (from its input)")
        );
        assert_eq!(
            layout.line().map(|l| l.1).unwrap_or_default(),
            "4 segments, up to 64 requests in flight, 2 partitions"
        );
        let one = Fact::Layout {
            segments: None,
            concurrency: None,
            partitions: 1,
            of: None,
        };
        assert_eq!(one.line().map(|l| l.1).unwrap_or_default(), "1 partition");
        assert_eq!(one.field().as_deref(), Some("partitions=1"));
    }

    #[test]
    fn a_recheck_shows_its_filters_with_and_without_column_positions() {
        let recheck = Fact::Recheck(vec!["feature@1 = search".into(), "n_2@12 > 3".into()]);
        assert_eq!(
            recheck.field().as_deref(),
            Some("recheck=[feature@1 = search, n_2@12 > 3]")
        );
        assert_eq!(
            recheck.line(),
            Some(("rechecks", "feature = search AND n_2 > 3".to_string()))
        );
        assert_eq!(without_column_numbers("a@b.c @1 x@"), "a@b.c @1 x@");
    }

    #[test]
    fn a_ceiling_below_the_estimate_says_refused_in_both() {
        let over = Fact::Ceiling {
            max: 5.0,
            over: Some(12.25),
        };
        assert!(over.field().unwrap_or_default().ends_with("refused)"));
        assert!(
            over.line()
                .map(|l| l.1)
                .unwrap_or_default()
                .ends_with("refused")
        );
    }
}
