//! `CREATE EXTERNAL TABLE ... STORED AS DYNAMODB ... OPTIONS (mirror '…')`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::CreateExternalTable;
use dynamo_datafusion::DynamoTableProvider;

use crate::mirror::Mirror;
use crate::provider::{Freshness, MirrorTableProvider, OnStale};

/// The options this factory reads; the others go to the table's own.
const MIRROR: &str = "mirror";
const MAX_STALENESS: &str = "max_staleness";
const ON_STALE: &str = "on_stale";

/// Creates DynamoDB tables as `inner` does (a `DynamoTableFactory`), and
/// with `OPTIONS (mirror 'PATH')` one answered from the mirror at PATH
/// while it is fresh enough: `max_staleness` (`'30s'` by default; `ms`,
/// `s`, `m`, `h`) and `on_stale` (`'sync'`: catch up from the stream
/// first, the default; `'live'`: read DynamoDB; `'error'`). The table's
/// columns are the mirror's.
///
/// ```no_run
/// use std::sync::Arc;
/// use datafusion::catalog::TableProviderFactory;
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use dynamo_datafusion::DynamoTableFactory;
/// use dynamo_mirror::MirrorTableFactory;
///
/// # fn demo(client: aws_sdk_dynamodb::Client) {
/// let tables = MirrorTableFactory::new(Arc::new(DynamoTableFactory::new(client)));
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_table_factory(DynamoTableFactory::FILE_TYPE.to_string(), Arc::new(tables))
///     .build();
/// // CREATE EXTERNAL TABLE orders STORED AS DYNAMODB LOCATION 'Orders'
/// //   OPTIONS (mirror '/data/mirrors/orders', max_staleness '1m');
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MirrorTableFactory {
    inner: Arc<dyn TableProviderFactory>,
}

impl MirrorTableFactory {
    /// Mirrors on top of `inner`, the factory of DynamoDB tables.
    pub fn new(inner: Arc<dyn TableProviderFactory>) -> Self {
        Self { inner }
    }
}

/// The value of option `key`, as given or with the prefixes DataFusion
/// and this project accept.
fn take(options: &mut HashMap<String, String>, key: &str) -> Option<String> {
    [
        key.to_string(),
        format!("format.{key}"),
        format!("dynamodb.{key}"),
    ]
    .iter()
    .find_map(|k| options.remove(k))
}

/// `'30s'`, `'500ms'`, `'5m'`, `'1h'`, `'0'` as a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| {
        format!("'{text}': expected a duration such as '30s', '500ms', '5m' or '1h'")
    })?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("'{text}': unknown unit '{other}' (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

#[async_trait]
impl TableProviderFactory for MirrorTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let mut options = cmd.options.clone();
        let path = take(&mut options, MIRROR);
        let staleness = take(&mut options, MAX_STALENESS);
        let on_stale = take(&mut options, ON_STALE);
        let Some(path) = path else {
            if staleness.is_some() || on_stale.is_some() {
                return Err(DataFusionError::Plan(format!(
                    "table {}: max_staleness and on_stale apply to a mirror: give OPTIONS (mirror 'PATH')",
                    cmd.name
                )));
            }
            return self.inner.create(state, cmd).await;
        };
        let plan_error =
            |what: String| DataFusionError::Plan(format!("table {}: {what}", cmd.name));
        let mut freshness = Freshness::default();
        if let Some(text) = staleness {
            freshness.max_staleness =
                parse_duration(&text).map_err(|e| plan_error(format!("max_staleness {e}")))?;
        }
        if let Some(text) = on_stale {
            freshness.on_stale = text
                .parse::<OnStale>()
                .map_err(|e| plan_error(format!("on_stale {e}")))?;
        }
        let location = cmd.locations.first().map(|l| l.trim()).unwrap_or_default();
        let mirror = Mirror::open_for(&path, location).await?;
        if !cmd.schema.fields().is_empty() {
            return Err(plan_error(
                "a mirrored table's columns are its mirror's: give no column list".to_string(),
            ));
        }
        let mut live_cmd = cmd.clone();
        live_cmd.options = options;
        live_cmd.schema = Arc::new(DFSchema::try_from(mirror.schema().as_ref().clone())?);
        let live = self.inner.create(state, &live_cmd).await?;
        let live = (live.as_ref() as &dyn std::any::Any)
            .downcast_ref::<DynamoTableProvider>()
            .cloned()
            .ok_or_else(|| {
                DataFusionError::Internal("the inner factory made no DynamoDB table".to_string())
            })?;
        Ok(Arc::new(MirrorTableProvider::new(
            Arc::new(live),
            &mirror,
            freshness,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_duration("-1s").is_err());
    }
}
