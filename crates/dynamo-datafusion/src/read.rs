//! DynamoDB reads, one page at a time, resumable from `LastEvaluatedKey`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};

use crate::decode::Item;
use crate::error::{Error, Result, sdk_message};
use crate::expression::ProjectionExpression;

/// What one Scan request asks for, apart from where to start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScanRequest {
    pub table: String,
    /// `(Segment, TotalSegments)` of a parallel scan.
    pub segment: Option<(i32, i32)>,
    pub projection: Option<ProjectionExpression>,
    pub consistent_read: bool,
}

/// One page of a Scan.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub items: Vec<Item>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<HashMap<String, AttributeValue>>,
    /// Items DynamoDB evaluated (before any filter).
    pub scanned_count: u64,
    /// Read capacity units consumed.
    pub consumed_capacity: f64,
}

impl ScanRequest {
    /// Reads one page starting at `start` (the previous page's `next`).
    pub(crate) async fn page(
        &self,
        client: &Client,
        start: Option<HashMap<String, AttributeValue>>,
        limit: Option<i32>,
    ) -> Result<Page> {
        let mut req = client
            .scan()
            .table_name(&self.table)
            .consistent_read(self.consistent_read)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_exclusive_start_key(start)
            .set_limit(limit);
        if let Some((segment, total)) = self.segment {
            req = req.segment(segment).total_segments(total);
        }
        if let Some(p) = &self.projection {
            req = req
                .projection_expression(&p.expression)
                .set_expression_attribute_names(Some(p.names.clone()));
        }
        let out = req.send().await.map_err(|e| {
            let table_missing = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            if table_missing {
                Error::TableNotFound {
                    table: self.table.clone(),
                }
            } else {
                Error::Request {
                    operation: "Scan",
                    table: self.table.clone(),
                    message: sdk_message(&e),
                }
            }
        })?;
        Ok(Page {
            scanned_count: out.scanned_count().max(0) as u64,
            consumed_capacity: out
                .consumed_capacity()
                .and_then(|c| c.capacity_units())
                .unwrap_or(0.0),
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
            items: out.items.unwrap_or_default(),
        })
    }
}
