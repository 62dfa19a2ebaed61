//! A [`DynamoExec`] taken apart for another process, and put together again
//! there: the scan plan, the schemas, how items are decoded and the
//! projection absorbed into the read — never the client, never credentials.
//! The process that runs it brings its own client
//! ([`ConnectionOptions::client_from`] with its own credential chain).

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use datafusion::physical_expr::PhysicalExpr;

use super::DynamoExec;
use super::nested::{NestedProjection, Use};
use super::recheck::Recheck;
use crate::client::ConnectionOptions;
use crate::decode::{DecoderSettings, ItemDecoder};
use crate::error::Result;
use crate::plan::ScanPlan;

/// A [`DynamoExec`] without its client.
///
/// `plan` and `layout` serialize with serde; the two schemas travel in
/// whatever form the carrier uses for Arrow schemas (DataFusion's plan
/// serialization has one).
#[derive(Debug, Clone)]
pub struct ExecParts {
    /// What is read.
    pub plan: ScanPlan,
    /// Where the reading process should connect (region, endpoint).
    pub connection: ConnectionOptions,
    /// The schema items are decoded into.
    pub decode_schema: SchemaRef,
    /// The schema of the batches handed on (the decoded schema, or the
    /// projection absorbed into the read).
    pub output_schema: SchemaRef,
    /// How items are decoded and cut down to the output.
    pub layout: ExecLayout,
    /// The query's filters the read does not enforce, checked on every
    /// decoded row: over `decode_schema`, whose first columns are the
    /// output's (empty: the read enforces them all). They travel in the
    /// carrier's form for physical expressions.
    pub recheck: Vec<Arc<dyn PhysicalExpr>>,
}

/// How a [`DynamoExec`] decodes items and cuts them down to its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecLayout {
    /// Per decoded column: maps hold only the keys its struct type names.
    closed_maps: Vec<bool>,
    /// Attributes with a column in the table (for the extra-attributes column).
    known_columns: Vec<String>,
    /// The table's key attributes (to name an item in messages).
    #[serde(default)]
    key_attributes: Vec<String>,
    /// An absorbed projection: per output column, its decoded column and
    /// the path into it.
    projection: Option<Vec<Use>>,
}

impl DynamoExec {
    /// This node's parts, for another process to run it. A node reading
    /// the partitions an input names ([`DynamoExec::with_partitions_input`])
    /// has that input as its child: it travels as any child does in the
    /// carrier's plan, and the receiver attaches it again with
    /// [`DynamoExec::reading_partitions_from`].
    pub fn to_parts(&self) -> ExecParts {
        let decoder = self.recheck.as_ref().map_or(&self.decoder, |r| &r.decoder);
        let settings = decoder.settings();
        ExecParts {
            plan: (*self.plan).clone(),
            connection: (*self.connection).clone(),
            decode_schema: Arc::clone(decoder.schema()),
            output_schema: Arc::clone(self.output_schema()),
            layout: ExecLayout {
                closed_maps: settings.closed_maps,
                known_columns: settings.known,
                key_attributes: settings.keys,
                projection: self.nested.as_ref().map(|n| n.outputs.clone()),
            },
            recheck: self
                .recheck
                .as_ref()
                .map(|r| r.filters().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The node `parts` describe, reading with `client`. Its schema does
    /// not widen here: a value its column cannot hold is an error.
    pub fn from_parts(client: Client, parts: ExecParts) -> Result<Self> {
        let ExecParts {
            plan,
            connection,
            decode_schema,
            output_schema,
            layout,
            recheck,
        } = parts;
        let decoder = ItemDecoder::with_settings(
            plan.table(),
            decode_schema,
            DecoderSettings {
                closed_maps: layout.closed_maps,
                known: layout.known_columns,
                keys: layout.key_attributes,
            },
        )?;
        // A re-check decodes the output's columns and then its own.
        let (decoder, recheck) = if recheck.is_empty() {
            (decoder, None)
        } else {
            let width = output_schema.fields().len();
            let output = decoder.reshaped(Arc::clone(&output_schema))?;
            (output, Some(Recheck::from_parts(decoder, recheck, width)))
        };
        let mut exec =
            DynamoExec::new(client, plan, decoder, None).connecting_to(Arc::new(connection));
        exec.recheck = recheck.map(Arc::new);
        Ok(match layout.projection {
            Some(outputs) => {
                let nested = NestedProjection::from_parts(
                    outputs,
                    Arc::clone(exec.decoder.schema()),
                    output_schema,
                );
                exec.absorbing(nested)
            }
            None => exec,
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
    use datafusion::logical_expr::{col, lit};
    use datafusion::physical_plan::ExecutionPlan;

    use datafusion::execution::context::ExecutionProps;
    use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
    use datafusion::physical_expr::create_physical_expr;

    use super::*;
    use crate::exec::QueryFilters;
    use crate::metadata::TableMeta;
    use crate::plan::{PlanOptions, ReadOptions};

    const ACCESS_KEY: &str = "AKIDEXAMPLEDONOTSHIP";
    const SECRET: &str = "wJalrXUtnFEMIsecretDONOTSHIP";

    fn client() -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET, None, None, "test"))
            .build();
        Client::from_conf(config)
    }

    fn schema() -> SchemaRef {
        let info = Fields::from(vec![
            Field::new("rating", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ]);
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new("info", DataType::Struct(info), true),
        ]))
    }

    fn exec() -> DynamoExec {
        exec_with(ReadOptions::default())
    }

    /// A 6-segment scan over 3 partitions, with `options`' budget and limits.
    fn exec_with(options: ReadOptions) -> DynamoExec {
        let meta = TableMeta::hash_only("Things", "id");
        let options = ReadOptions {
            plan: PlanOptions::default(),
            segments: 6,
            max_partitions: 3,
            ..options
        };
        let filters = [col("n").gt(lit(3i64))];
        let plan =
            ScanPlan::new(&meta, &schema(), &filters, Some(&[0, 2]), None, &options).expect("plan");
        let decoder =
            ItemDecoder::try_new("Things", plan.output_schema(&schema()).expect("schema"))
                .expect("decoder")
                .closing_maps(|c| c == "info");
        let query = QueryFilters::new(&schema(), &filters, |f, s| {
            create_physical_expr(
                &f,
                s,
                &ExecutionProps::new(),
                &PhysicalPlanningContext::default(),
            )
        })
        .expect("filters");
        DynamoExec::new(client(), plan, decoder, None)
            .checking(Arc::new(query))
            .expect("re-check")
            .connecting_to(Arc::new(ConnectionOptions {
                endpoint_url: Some("http://127.0.0.1:8000".into()),
                region: Some("eu-west-1".into()),
                profile: None,
            }))
    }

    /// The parts through JSON (plan, layout, connection), the schemas as they are.
    fn through_json(parts: ExecParts) -> (ExecParts, String) {
        let plan = serde_json::to_string(&parts.plan).expect("plan");
        let layout = serde_json::to_string(&parts.layout).expect("layout");
        let connection = serde_json::to_string(&parts.connection).expect("connection");
        let text = format!("{plan}\n{layout}\n{connection}");
        let back = ExecParts {
            plan: serde_json::from_str(&plan).expect("plan back"),
            layout: serde_json::from_str(&layout).expect("layout back"),
            connection: serde_json::from_str(&connection).expect("connection back"),
            ..parts
        };
        (back, text)
    }

    #[test]
    fn a_scan_comes_back_the_same_without_its_client() {
        let exec = exec();
        let (parts, text) = through_json(exec.to_parts());
        assert!(
            !text.contains(ACCESS_KEY) && !text.contains(SECRET),
            "no credentials travel: {text}"
        );
        let back = DynamoExec::from_parts(client(), parts).expect("back");
        assert_eq!(back.describe(), exec.describe());
        assert_eq!(back.schema(), exec.schema());
        assert_eq!(back.partition_count(), 3);
        assert_eq!(back.scan_plan(), exec.scan_plan());
        assert_eq!(back.to_parts().layout, exec.to_parts().layout);
        // `n > 3` is sent as a FilterExpression and re-checked on the rows:
        // `n` is decoded after the output's `id` and `info`, then dropped.
        let recheck = back.to_parts().recheck;
        assert_eq!(recheck.len(), 1);
        assert_eq!(recheck[0].to_string(), "n@2 > 3");
        assert_eq!(back.to_parts().decode_schema.fields().len(), 3);
        assert_eq!(back.schema().fields().len(), 2);
        assert_eq!(
            back.to_parts().connection.region.as_deref(),
            Some("eu-west-1")
        );
    }

    /// What an executor rebuilds for a task holding 2 of the scan's 3
    /// partitions: those 2 partitions, at 2/3 of the budget.
    #[tokio::test]
    async fn a_task_reads_its_partitions_at_its_share_of_the_budget() {
        use datafusion::datasource::memory::MemorySourceConfig;
        use datafusion::datasource::source::DataSourceExec;

        let whole = exec_with(ReadOptions {
            read_capacity: Some(90.0),
            ..ReadOptions::default()
        })
        .with_partitions_input()
        .expect("input");
        let rate = |e: &DynamoExec| e.reader.capacity.as_ref().map(|c| c.rate());
        assert_eq!(rate(&whole), Some(90.0));
        let input = whole.input.clone().expect("input");
        let memory = input
            .downcast_ref::<DataSourceExec>()
            .and_then(|d| d.data_source().downcast_ref::<MemorySourceConfig>())
            .expect("memory input");
        let kept = vec![
            memory.partitions()[0].clone(),
            memory.partitions()[2].clone(),
        ];
        let slice = DataSourceExec::from_data_source(
            MemorySourceConfig::try_new(&kept, memory.original_schema(), None).expect("slice"),
        );
        let (parts, _) = through_json(whole.to_parts());
        let task = DynamoExec::from_parts(client(), parts)
            .expect("back")
            .reading_partitions_from(slice)
            .expect("task");
        assert_eq!(task.partition_count(), 2);
        let share = rate(&task).expect("a budget");
        assert!((share - 60.0).abs() < 1e-9, "2/3 of 90 RCU/s: {share}");
        assert!(
            task.describe()
                .ends_with("partitions=2 of 3 (from its input)")
        );
    }

    #[test]
    fn an_absorbed_projection_comes_back_with_it() {
        // No filter to re-check: a projection of struct fields is absorbed.
        let meta = TableMeta::hash_only("Things", "id");
        let plan = ScanPlan::new(&meta, &schema(), &[], None, None, &ReadOptions::default())
            .expect("plan");
        let decoder = ItemDecoder::try_new("Things", schema())
            .expect("decoder")
            .closing_maps(|c| c == "info");
        let exec = DynamoExec::new(client(), plan, decoder, None);
        // `info.rating` alone, as `SELECT info['rating'] ...` absorbs it.
        let input = Arc::clone(exec.decoder.schema());
        let output = Arc::new(Schema::new(vec![Field::new(
            "info.rating",
            DataType::Int64,
            true,
        )]));
        let nested = NestedProjection::new(&input, vec![(2, vec!["rating".to_string()])], output);
        let mut narrowed = exec.clone();
        narrowed.decoder = exec
            .decoder
            .reshaped(Arc::clone(&nested.read_schema))
            .expect("reshaped");
        let narrowed = narrowed.absorbing(nested);
        let (parts, _) = through_json(narrowed.to_parts());
        let back = DynamoExec::from_parts(client(), parts).expect("back");
        assert_eq!(back.schema(), narrowed.schema());
        assert_eq!(back.decoder.schema(), narrowed.decoder.schema());
        assert_eq!(back.to_parts().layout, narrowed.to_parts().layout);
    }

    #[test]
    fn a_provider_comes_back_from_its_parts_without_io() {
        use crate::{DynamoTableProvider, TableOptions};
        use datafusion::catalog::TableProvider;
        let meta = TableMeta::hash_only("Things", "id");
        let options = TableOptions {
            segments: Some(12),
            consistent_read: true,
            ..TableOptions::default()
        };
        let meta_json = serde_json::to_string(&meta).expect("meta");
        let options_json = serde_json::to_string(&options).expect("options");
        let provider = DynamoTableProvider::from_parts(
            client(),
            serde_json::from_str(&meta_json).expect("meta back"),
            schema(),
            serde_json::from_str(&options_json).expect("options back"),
            ConnectionOptions::default(),
        )
        .expect("provider");
        assert_eq!(provider.meta(), &meta);
        assert_eq!(provider.options(), &options);
        assert_eq!(provider.schema(), schema());
        assert!(!options_json.contains(SECRET) && !meta_json.contains(SECRET));
    }

    #[test]
    fn the_request_reads_as_a_person_would_write_it() {
        let lines = exec().request_lines();
        let get = |label: &str| {
            lines
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("operation"), "Scan");
        assert_eq!(get("table"), "Things");
        assert_eq!(
            get("filter"),
            "n > 3",
            "names and values in place of #n0 and :v0"
        );
        assert_eq!(
            get("reads"),
            "6 segments, up to 64 requests in flight, 3 partitions"
        );
        assert!(get("projection").contains("id"), "{lines:?}");
    }
}
