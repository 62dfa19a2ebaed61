//! A scan's partitions as an input plan, for engines that split a plan's
//! partitions among tasks on several machines.
//!
//! A distributed scheduler (Ballista) hands each task only its slice of the
//! partitions of the leaves it knows — file and in-memory scans, shuffle
//! readers — and runs every partition of any other leaf in every task. So a
//! [`DynamoExec`](super::DynamoExec) planned for such an engine is not a
//! leaf: its child is an in-memory scan whose partition `p` holds one row,
//! the number `p`. The scheduler slices that child like any memory scan, and
//! the node reads exactly the partitions its child still names: across all
//! tasks, every partition once.
//!
//! The node's read-capacity budget is shared the same way: a node left with
//! `k` of the scan's `n` partitions reads at `k / n` of the budget, so the
//! tasks of one query together never exceed it (units are spread evenly over
//! partitions, so each task's share matches its part of the work).

use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;

/// The column of the input plan: which of the scan's partitions to read.
pub(crate) const PARTITION_COLUMN: &str = "dynamodb_partition";

fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        PARTITION_COLUMN,
        DataType::UInt32,
        false,
    )]))
}

/// An in-memory scan of `partitions` partitions, partition `p` holding `p`.
pub(crate) fn partitions_input(partitions: usize) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = input_schema();
    let batches = (0..partitions)
        .map(|p| {
            let number = u32::try_from(p).map_err(|_| {
                DataFusionError::Plan(format!("{partitions} partitions are too many"))
            })?;
            let column = Arc::new(UInt32Array::from(vec![number]));
            Ok(vec![RecordBatch::try_new(
                Arc::clone(&schema),
                vec![column],
            )?])
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DataSourceExec::from_data_source(
        MemorySourceConfig::try_new(&batches, schema, None)?,
    ))
}

/// Refuses an input that is not a list of partition numbers.
pub(crate) fn check_input(input: &Arc<dyn ExecutionPlan>) -> Result<()> {
    let schema = input.schema();
    match schema.fields().as_ref() {
        [field] if field.name() == PARTITION_COLUMN && field.data_type() == &DataType::UInt32 => {
            Ok(())
        }
        _ => Err(DataFusionError::Internal(format!(
            "DynamoExec's input must be one UInt32 column '{PARTITION_COLUMN}' \
             (the partitions to read), not {schema}"
        ))),
    }
}

/// The partition numbers a stream of the input names, each checked
/// against the scan's `partitions`.
pub(crate) async fn partition_numbers(
    stream: SendableRecordBatchStream,
    partitions: usize,
) -> Result<Vec<usize>> {
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    let mut numbers = Vec::new();
    for batch in &batches {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "DynamoExec's input column '{PARTITION_COLUMN}' is not UInt32"
                ))
            })?;
        if column.null_count() > 0 {
            return Err(DataFusionError::Internal(format!(
                "DynamoExec's input names a NULL partition in '{PARTITION_COLUMN}'"
            )));
        }
        for number in column.values().iter() {
            let p = *number as usize;
            if p >= partitions {
                return Err(DataFusionError::Internal(format!(
                    "DynamoExec's input names partition {p}; the scan has {partitions}"
                )));
            }
            numbers.push(p);
        }
    }
    Ok(numbers)
}

/// The part of the read-capacity budget a node holding `held` of the
/// scan's `partitions` partitions may use.
pub(crate) fn capacity_share(held: usize, partitions: usize) -> f64 {
    if partitions == 0 {
        return 1.0;
    }
    (held.min(partitions) as f64) / (partitions as f64)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn each_partition_of_the_input_names_itself() {
        let input = partitions_input(5).expect("input");
        check_input(&input).expect("valid");
        assert_eq!(
            input.properties().output_partitioning().partition_count(),
            5
        );
        let ctx = SessionContext::new().task_ctx();
        for p in 0..5 {
            let stream = input.execute(p, Arc::clone(&ctx)).expect("stream");
            assert_eq!(partition_numbers(stream, 5).await.expect("numbers"), [p]);
        }
    }

    #[tokio::test]
    async fn a_number_outside_the_scan_is_an_error() {
        let input = partitions_input(5).expect("input");
        let ctx = SessionContext::new().task_ctx();
        let stream = input.execute(4, ctx).expect("stream");
        let err = partition_numbers(stream, 3)
            .await
            .expect_err("out of range");
        assert!(err.to_string().contains("partition 4"), "{err}");
    }

    #[test]
    fn another_input_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let other = DataSourceExec::from_data_source(
            MemorySourceConfig::try_new(&[vec![]], schema, None).expect("memory"),
        );
        let err = check_input(&(other as Arc<dyn ExecutionPlan>)).expect_err("refused");
        assert!(err.to_string().contains(PARTITION_COLUMN), "{err}");
    }

    #[test]
    fn shares_add_up_to_the_budget() {
        assert_eq!(capacity_share(8, 8), 1.0);
        let total: f64 = [3, 3, 2].iter().map(|k| capacity_share(*k, 8)).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(capacity_share(0, 8), 0.0);
    }
}
