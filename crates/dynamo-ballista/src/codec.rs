//! Plan codecs that carry DynamoDB tables and scans between Ballista's
//! client, scheduler and executors — and never a credential.
//!
//! [`DynamoLogicalCodec`] and [`DynamoPhysicalCodec`] wrap Ballista's own
//! codecs: a [`DynamoTableProvider`] or a [`DynamoExec`] is written by this
//! crate, every other node by the wrapped codec. What travels for a table:
//! its name and metadata, its options and its connection (region, endpoint
//! URL, profile name); for a scan: its [`ScanPlan`](dynamo_datafusion::ScanPlan),
//! connection, schemas and decoding layout. The process that decodes builds
//! its own SDK client from its own credential chain, loaded once at start
//! ([`Connector`]), with the region and endpoint the plan names unless the
//! process overrides them.
//!
//! Wire format: [`MAGIC`] then JSON; a buffer without it belongs to the
//! wrapped codec.

use std::fmt;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use base64::Engine as _;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf;
use dynamo_datafusion::exec::{ExecLayout, ExecParts};
use dynamo_datafusion::{
    ConnectionOptions, DynamoExec, DynamoTableProvider, ScanPlan, TableMeta, TableOptions,
};
use dynamo_mirror::{MirrorScanExec, MirrorScanParts, MirrorTableParts, MirrorTableProvider};
use prost::Message as _;
use serde::{Deserialize, Serialize};

/// The first bytes of every buffer this crate writes.
pub const MAGIC: &[u8] = b"dynamo-ballista/1\n";

/// Builds the SDK clients a process reads DynamoDB with: its own
/// configuration and credential chain, and the region and endpoint a plan
/// names unless the process overrides them.
#[derive(Clone)]
pub struct Connector {
    base: SdkConfig,
    overrides: ConnectionOptions,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK configuration holds a credentials provider: never printed.
        f.debug_struct("Connector")
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Clients from `base` (this process's configuration and credentials);
    /// `overrides` replaces the region and endpoint a plan names, where set.
    pub fn new(base: SdkConfig, overrides: ConnectionOptions) -> Self {
        Self { base, overrides }
    }

    /// The client for a plan that names `connection`.
    pub fn client(&self, connection: &ConnectionOptions) -> Client {
        let effective = ConnectionOptions::default()
            .with_endpoint_url(
                self.overrides
                    .endpoint_url
                    .clone()
                    .or_else(|| connection.endpoint_url.clone()),
            )
            .with_region(
                self.overrides
                    .region
                    .clone()
                    .or_else(|| connection.region.clone()),
            );
        effective.client_from(&self.base)
    }
}

/// A table, as it travels.
#[derive(Debug, Serialize, Deserialize)]
struct TableWire {
    meta: TableMeta,
    options: TableOptions,
    connection: ConnectionOptions,
}

/// A table answered from its mirror, as it travels: the mirror's parts
/// and the live table's.
#[derive(Debug, Serialize, Deserialize)]
struct MirrorTableWire {
    mirror: MirrorTableParts,
    live: TableWire,
}

/// Any table this codec writes: a mirrored one has the key `mirror`.
enum AnyTableWire {
    Mirrored(MirrorTableWire),
    Dynamo(TableWire),
}

impl AnyTableWire {
    fn read(json: &[u8]) -> Result<Self> {
        let failed = |e: serde_json::Error| codec_error("decoding a table", e);
        Ok(if has_key(json, "mirror")? {
            Self::Mirrored(serde_json::from_slice(json).map_err(failed)?)
        } else {
            Self::Dynamo(serde_json::from_slice(json).map_err(failed)?)
        })
    }
}

/// True when the JSON object `json` has the top-level key `key` (the
/// wire's kind; serde's untagged enums lose exact numbers).
fn has_key(json: &[u8], key: &str) -> Result<bool> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| codec_error("decoding", e))?;
    Ok(value.get(key).is_some())
}

/// A read of a mirror's files, as it travels (its input, the Parquet scan,
/// travels as DataFusion's own node).
#[derive(Debug, Serialize, Deserialize)]
struct MirrorScanWire {
    mirror_scan: MirrorScanParts,
}

/// Any scan this codec writes: a mirror read has the key `mirror_scan`.
enum AnyScanWire {
    Mirror(Box<MirrorScanWire>),
    Dynamo(Box<ScanWire>),
}

impl AnyScanWire {
    fn read(json: &[u8]) -> Result<Self> {
        let failed = |e: serde_json::Error| codec_error("decoding a scan", e);
        Ok(if has_key(json, "mirror_scan")? {
            Self::Mirror(Box::new(serde_json::from_slice(json).map_err(failed)?))
        } else {
            Self::Dynamo(Box::new(serde_json::from_slice(json).map_err(failed)?))
        })
    }
}

/// A scan, as it travels.
#[derive(Debug, Serialize, Deserialize)]
struct ScanWire {
    plan: ScanPlan,
    connection: ConnectionOptions,
    layout: ExecLayout,
    /// DataFusion's protobuf encoding of the schemas, in base64.
    decode_schema: String,
    output_schema: String,
    /// Filters checked on the decoded rows: DataFusion's protobuf encoding
    /// of physical expressions, in base64.
    #[serde(default)]
    recheck: Vec<String>,
}

fn codec_error(what: &str, e: impl fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("dynamo-ballista codec: {what}: {e}"))
}

/// Our buffer's JSON, when `buf` is ours.
fn ours(buf: &[u8]) -> Option<&[u8]> {
    buf.strip_prefix(MAGIC)
}

fn write<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, value).map_err(|e| codec_error("encoding", e))
}

fn schema_to_text(schema: &SchemaRef) -> Result<String> {
    let proto = datafusion_proto::protobuf::Schema::try_from(schema.as_ref())
        .map_err(|e| codec_error("schema", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(proto.encode_to_vec()))
}

fn from_base64(text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| codec_error("base64", e))
}

fn schema_from_text(text: &str) -> Result<SchemaRef> {
    let bytes = from_base64(text)?;
    let proto = datafusion_proto::protobuf::Schema::decode(bytes.as_slice())
        .map_err(|e| codec_error("schema", e))?;
    Ok(Arc::new(
        Schema::try_from(&proto).map_err(|e| codec_error("schema", e))?,
    ))
}

/// Ballista's logical codec, with DynamoDB tables.
#[derive(Debug)]
pub struct DynamoLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
    connector: Connector,
}

impl DynamoLogicalCodec {
    /// Wraps `inner` (Ballista's `BallistaLogicalExtensionCodec`).
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>, connector: Connector) -> Self {
        Self { inner, connector }
    }
}

impl LogicalExtensionCodec for DynamoLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(json) = ours(buf) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        match AnyTableWire::read(json)? {
            AnyTableWire::Dynamo(wire) => Ok(Arc::new(self.live_table(wire, schema)?)),
            AnyTableWire::Mirrored(wire) => {
                let live = self.live_table(wire.live, Arc::new(wire.mirror.schema.clone()))?;
                Ok(Arc::new(MirrorTableProvider::from_parts(
                    Arc::new(live),
                    wire.mirror,
                )))
            }
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let any = node.as_ref() as &dyn std::any::Any;
        if let Some(provider) = any.downcast_ref::<DynamoTableProvider>() {
            return write(&table_wire(provider), buf);
        }
        if let Some(mirrored) = any.downcast_ref::<MirrorTableProvider>() {
            let wire = MirrorTableWire {
                mirror: mirrored.to_parts(),
                live: table_wire(mirrored.live()),
            };
            return write(&wire, buf);
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }
}

impl DynamoLogicalCodec {
    /// The live table `wire` describes, with `schema`, reading with this
    /// process's credentials.
    fn live_table(&self, wire: TableWire, schema: SchemaRef) -> Result<DynamoTableProvider> {
        let client = self.connector.client(&wire.connection);
        Ok(DynamoTableProvider::from_parts(
            client,
            wire.meta,
            schema,
            wire.options,
            wire.connection,
        )?)
    }
}

fn table_wire(provider: &DynamoTableProvider) -> TableWire {
    TableWire {
        meta: provider.meta().clone(),
        options: provider.options().clone(),
        connection: provider.connection().clone(),
    }
}

/// Ballista's physical codec, with DynamoDB scans.
#[derive(Debug)]
pub struct DynamoPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
    connector: Connector,
}

impl DynamoPhysicalCodec {
    /// Wraps `inner` (Ballista's `BallistaPhysicalExtensionCodec`).
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>, connector: Connector) -> Self {
        Self { inner, connector }
    }
}

impl PhysicalExtensionCodec for DynamoPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(json) = ours(buf) else {
            return self.inner.try_decode(buf, inputs, ctx, proto_converter);
        };
        let wire = match AnyScanWire::read(json)? {
            AnyScanWire::Dynamo(wire) => *wire,
            AnyScanWire::Mirror(wire) => {
                let [input] = inputs else {
                    return Err(codec_error(
                        "decoding a mirror read",
                        format!("{} inputs, one expected", inputs.len()),
                    ));
                };
                return Ok(Arc::new(MirrorScanExec::from_parts(
                    Arc::clone(input),
                    wire.mirror_scan,
                )));
            }
        };
        let client = self.connector.client(&wire.connection);
        let decode_schema = schema_from_text(&wire.decode_schema)?;
        let recheck = wire
            .recheck
            .iter()
            .map(|text| {
                let proto = protobuf::PhysicalExprNode::decode(from_base64(text)?.as_slice())
                    .map_err(|e| codec_error("a filter", e))?;
                parse_physical_expr(&proto, ctx, &decode_schema, self)
            })
            .collect::<Result<Vec<_>>>()?;
        let parts = ExecParts {
            plan: wire.plan,
            connection: wire.connection,
            decode_schema,
            output_schema: schema_from_text(&wire.output_schema)?,
            layout: wire.layout,
            recheck,
        };
        let exec = DynamoExec::from_parts(client, parts)?;
        Ok(match inputs {
            [] => Arc::new(exec),
            [input] => Arc::new(exec.reading_partitions_from(Arc::clone(input))?),
            _ => {
                return Err(codec_error(
                    "decoding a scan",
                    format!("{} inputs, at most one expected", inputs.len()),
                ));
            }
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(read) = (node.as_ref() as &dyn std::any::Any).downcast_ref::<MirrorScanExec>() {
            let wire = MirrorScanWire {
                mirror_scan: read.to_parts(),
            };
            return write(&wire, buf);
        }
        let Some(exec) = (node.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoExec>() else {
            return self.inner.try_encode(node, buf, proto_converter);
        };
        let parts = exec.to_parts();
        let recheck = parts
            .recheck
            .iter()
            .map(|f| {
                let proto = serialize_physical_expr(f, self)?;
                Ok(base64::engine::general_purpose::STANDARD.encode(proto.encode_to_vec()))
            })
            .collect::<Result<Vec<_>>>()?;
        let wire = ScanWire {
            recheck,
            decode_schema: schema_to_text(&parts.decode_schema)?,
            output_schema: schema_to_text(&parts.output_schema)?,
            plan: parts.plan,
            connection: parts.connection,
            layout: parts.layout,
        };
        write(&wire, buf)
    }
}
