//! Reading a table's stream: its shards in lineage order, each from its
//! oldest record (or from where a checkpoint stopped), iterators taken
//! again when they expire.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use datafusion::arrow::array::RecordBatch;

use super::decode::ChangeDecoder;
use super::lineage::{ShardInfo, lineage_order};
use crate::error::{Error, Result};
use crate::read::request_error;

/// Records asked for per GetRecords call (DynamoDB's most).
const PAGE: i32 = 1_000;
/// Empty pages in a row after which an open shard is taken as read to its
/// end: DynamoDB may answer an empty page before records further on.
const EMPTY_PAGES_AT_END: u32 = 3;

/// Where the read of one shard stands.
struct Position {
    shard: ShardInfo,
    iterator: String,
    /// The last record read, to take a new iterator after it.
    last: Option<String>,
    empty_pages: u32,
}

/// Where a read of a table's changes stopped: per shard the last record
/// read, and the closed shards read to their end. A read from a checkpoint
/// returns exactly the records after it (nothing read twice, nothing
/// skipped); it serializes (JSON) to be kept with what the records built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCheckpoint {
    /// The stream read (a table's stream disabled and enabled again is
    /// another stream).
    pub stream_arn: String,
    /// Per shard, the sequence number of the last record read.
    pub positions: BTreeMap<String, String>,
    /// Closed shards read to their end.
    pub finished: BTreeSet<String>,
}

/// A read of everything a table's stream holds now, page by page.
pub(crate) struct ChangeCursor {
    client: Client,
    table: String,
    arn: String,
    decoder: ChangeDecoder,
    shards: Option<VecDeque<ShardInfo>>,
    at: Option<Position>,
    /// Where the read stands (from where it started, moved as it reads).
    checkpoint: ChangeCheckpoint,
}

impl ChangeCursor {
    pub(crate) fn new(client: Client, table: String, arn: String, decoder: ChangeDecoder) -> Self {
        let checkpoint = ChangeCheckpoint {
            stream_arn: arn.clone(),
            ..ChangeCheckpoint::default()
        };
        Self {
            client,
            table,
            arn,
            decoder,
            shards: None,
            at: None,
            checkpoint,
        }
    }

    /// The same read, starting after `checkpoint`: an error when the
    /// checkpoint is of another stream.
    pub(crate) fn after(mut self, checkpoint: ChangeCheckpoint) -> Result<Self> {
        if checkpoint.stream_arn != self.arn {
            return Err(Error::ChangesCheckpoint {
                table: self.table.clone(),
                reason: format!(
                    "it was taken of stream {}, and the table's stream is now {}",
                    checkpoint.stream_arn, self.arn
                ),
            });
        }
        self.checkpoint = checkpoint;
        Ok(self)
    }

    /// Where the read stands: after every record returned so far.
    pub(crate) fn checkpoint(&self) -> &ChangeCheckpoint {
        &self.checkpoint
    }

    /// The columns of the records it returns.
    pub(crate) fn schema(&self) -> &datafusion::arrow::datatypes::SchemaRef {
        self.decoder.schema()
    }

    /// The shards still to read, in lineage order: those a checkpoint has
    /// not finished. A shard the checkpoint stopped inside that the stream
    /// no longer lists was trimmed: the records after the checkpoint are
    /// gone, an error.
    async fn shards_to_read(&mut self) -> Result<VecDeque<ShardInfo>> {
        let listed = lineage_order(self.describe().await?);
        let ids: BTreeSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        if let Some(lost) = self.checkpoint.positions.keys().find(|shard| {
            !ids.contains(shard.as_str()) && !self.checkpoint.finished.contains(*shard)
        }) {
            return Err(trimmed(&self.table, lost));
        }
        // What the stream no longer lists needs no remembering.
        self.checkpoint
            .finished
            .retain(|s| ids.contains(s.as_str()));
        self.checkpoint
            .positions
            .retain(|s, _| ids.contains(s.as_str()));
        Ok(listed
            .into_iter()
            .filter(|s| !self.checkpoint.finished.contains(&s.id))
            .collect())
    }

    /// The next batch of change records, `None` once every shard is read.
    pub(crate) async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.shards.is_none() {
                self.shards = Some(self.shards_to_read().await?);
            }
            if self.at.is_none() {
                let Some(shard) = self.shards.as_mut().and_then(VecDeque::pop_front) else {
                    return Ok(None);
                };
                let last = self.checkpoint.positions.get(&shard.id).cloned();
                let iterator = self.iterator(&shard, last.as_deref()).await?;
                self.at = Some(Position {
                    shard,
                    iterator,
                    last,
                    empty_pages: 0,
                });
            }
            let Some(at) = self.at.as_mut() else {
                continue;
            };
            let answer = self
                .client
                .get_records()
                .shard_iterator(&at.iterator)
                .limit(PAGE)
                .send()
                .await;
            let out = match answer {
                Ok(out) => out,
                Err(e) => match e.as_service_error() {
                    // Iterators live 15 minutes: take one after the last record read.
                    Some(GetRecordsError::ExpiredIteratorException(_)) => {
                        let (shard, last) = (at.shard.clone(), at.last.clone());
                        let fresh = self.iterator(&shard, last.as_deref()).await?;
                        if let Some(at) = self.at.as_mut() {
                            at.iterator = fresh;
                        }
                        continue;
                    }
                    Some(GetRecordsError::TrimmedDataAccessException(_)) => {
                        return Err(trimmed(&self.table, &at.shard.id));
                    }
                    _ => return Err(request_error(&self.table, "GetRecords", &e, 1)),
                },
            };
            let records: Vec<Record> = out.records.unwrap_or_default();
            if records.is_empty() {
                at.empty_pages += 1;
            } else {
                at.empty_pages = 0;
                at.last = records
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|c| c.sequence_number())
                    .map(str::to_string);
            }
            let shard_id = at.shard.id.clone();
            if let Some(last) = &at.last {
                self.checkpoint
                    .positions
                    .insert(shard_id.clone(), last.clone());
            }
            let read_to_end = match out.next_shard_iterator {
                // A closed shard read to its end.
                None => {
                    self.checkpoint.finished.insert(shard_id.clone());
                    true
                }
                Some(next) => {
                    at.iterator = next;
                    at.shard.is_open() && at.empty_pages >= EMPTY_PAGES_AT_END
                }
            };
            if read_to_end {
                self.at = None;
            }
            if !records.is_empty() {
                return self.decoder.decode(&shard_id, &records).map(Some);
            }
        }
    }

    /// Every shard DescribeStream lists, following its pages.
    async fn describe(&self) -> Result<Vec<ShardInfo>> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| request_error(&self.table, "DescribeStream", &e, 1))?;
            let Some(description) = out.stream_description else {
                return Ok(shards);
            };
            shards.extend(description.shards().iter().filter_map(|s| {
                Some(ShardInfo {
                    id: s.shard_id()?.to_string(),
                    parent: s.parent_shard_id().map(str::to_string),
                    starting: s
                        .sequence_number_range()
                        .and_then(|r| r.starting_sequence_number())
                        .map(str::to_string),
                    ending: s
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .map(str::to_string),
                })
            }));
            match description.last_evaluated_shard_id {
                Some(next) => start = Some(next),
                None => return Ok(shards),
            }
        }
    }

    /// An iterator at the shard's oldest record, or after record `after`.
    async fn iterator(&self, shard: &ShardInfo, after: Option<&str>) -> Result<String> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(&shard.id);
        let request = match after {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let out = request.send().await.map_err(|e| {
            let trimmed_error = e.as_service_error().is_some_and(|s| {
                matches!(
                    s,
                    aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError::TrimmedDataAccessException(_)
                )
            });
            if trimmed_error {
                trimmed(&self.table, &shard.id)
            } else {
                request_error(&self.table, "GetShardIterator", &e, 1)
            }
        })?;
        out.shard_iterator.ok_or_else(|| Error::Metadata {
            table: self.table.clone(),
            reason: format!("GetShardIterator gave no iterator for shard {}", shard.id),
        })
    }
}

fn trimmed(table: &str, shard: &str) -> Error {
    Error::ChangesTrimmed {
        table: table.to_string(),
        shard: shard.to_string(),
    }
}
