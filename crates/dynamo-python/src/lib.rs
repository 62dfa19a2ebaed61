//! `dynamo_datafusion` for Python: DynamoDB tables in datafusion-python.
//!
//! [`DynamoTable`] is one table, [`DynamoCatalog`] every table of an account
//! and region; datafusion-python 55 takes either through DataFusion's FFI
//! (`__datafusion_table_provider__` / `__datafusion_catalog_provider__`):
//!
//! ```python
//! from datafusion import SessionContext
//! from dynamo_datafusion import DynamoTable
//! ctx = SessionContext()
//! ctx.register_table("events", DynamoTable("UserEngagement", region="us-east-1"))
//! ctx.sql("SELECT count(*) FROM events WHERE userId = '123015'").to_pandas()
//! ```
//!
//! The provider is the Rust one: filters, projections and limits cross the
//! FFI boundary and become GetItem, BatchGetItem, Query or Scan requests.
//! The SDK and every read run on this module's own tokio runtime; dropping
//! a result stream (a Python interrupt does) stops the reads.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_ffi::catalog_provider::FFI_CatalogProvider;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use dynamo_datafusion::schema::time_format_of;
use dynamo_datafusion::session::DEFAULT_SCHEMA;
use dynamo_datafusion::{
    CapacityCeilingRule, ConnectionOptions, DynamoSchemaProvider, DynamoTableProvider,
    TableOptions, readable_plan,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

/// The runtime every SDK call and every read of this module runs on.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("dynamo-datafusion")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("dynamo_datafusion cannot start its tokio runtime: {e}"))
});

const TABLE_PROVIDER: &CStr = c"datafusion_table_provider";
const CATALOG_PROVIDER: &CStr = c"datafusion_catalog_provider";
const LOGICAL_CODEC: &CStr = c"datafusion_logical_extension_codec";

/// The logical extension codec of a datafusion-python session (or of the
/// capsule given in its place).
#[allow(unsafe_code)]
fn session_codec(session: &Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let capsule = if session.hasattr("__datafusion_logical_extension_codec__")? {
        session.call_method0("__datafusion_logical_extension_codec__")?
    } else {
        session.clone()
    };
    let capsule = capsule.cast::<PyCapsule>().map_err(|_| {
        PyValueError::new_err("expected a datafusion SessionContext (or its codec capsule)")
    })?;
    let pointer = capsule.pointer_checked(Some(LOGICAL_CODEC))?;
    // SAFETY: a capsule named `datafusion_logical_extension_codec` holds an
    // `FFI_LogicalExtensionCodec` (datafusion-python's contract); it is
    // cloned while the capsule, held by `capsule`, is alive.
    let codec = unsafe { pointer.cast::<FFI_LogicalExtensionCodec>().as_ref() };
    Ok(codec.clone())
}

/// Where to connect, from the keyword arguments.
fn connection(
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> ConnectionOptions {
    ConnectionOptions::default()
        .with_endpoint_url(endpoint_url)
        .with_region(region)
        .with_profile(profile)
}

/// Table options from keyword arguments: the options of `CREATE EXTERNAL
/// TABLE … OPTIONS (…)`, values as Python gives them (`True` is `true`); a
/// dict is `name: value; …` (`time_formats={"eventTime": "epoch_seconds"}`
/// is the option `time_format`, `column_types={...}` likewise).
fn table_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<TableOptions> {
    let mut map = HashMap::new();
    if let Some(options) = options {
        for (key, value) in options.iter() {
            let mut key: String = key.extract()?;
            let value = if let Ok(dict) = value.cast::<PyDict>() {
                if key == "time_formats" {
                    key = "time_format".to_string();
                }
                let mut pairs = Vec::new();
                for (name, v) in dict.iter() {
                    pairs.push(format!("{}: {}", name.str()?, v.str()?));
                }
                pairs.join("; ")
            } else {
                match value.extract::<bool>() {
                    Ok(b) if value.is_instance_of::<pyo3::types::PyBool>() => b.to_string(),
                    _ => value.str()?.to_string(),
                }
            };
            map.insert(key, value);
        }
    }
    TableOptions::from_map(&map).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A schema provider whose lookups run on this module's runtime: the
/// caller (datafusion-python, through the FFI) polls them from its own, and
/// describing a table needs the SDK's.
#[derive(Debug)]
struct OnRuntime(Arc<DynamoSchemaProvider>);

#[async_trait]
impl SchemaProvider for OnRuntime {
    fn table_names(&self) -> Vec<String> {
        self.0.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let (inner, name) = (Arc::clone(&self.0), name.to_string());
        RUNTIME
            .spawn(async move { inner.table(&name).await })
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.table_exist(name)
    }
}

/// `read` with a client of `connection`, on this module's runtime, the
/// Python thread released meanwhile.
fn on_runtime<T, F, Fut>(py: Python<'_>, connection: ConnectionOptions, read: F) -> T
where
    T: Send,
    F: FnOnce(aws_sdk_dynamodb::Client) -> Fut + Send,
    Fut: std::future::Future<Output = T>,
{
    py.detach(|| RUNTIME.block_on(async { read(connection.client().await).await }))
}

fn runtime_error(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// One DynamoDB table, for `SessionContext.register_table`.
///
/// `DynamoTable(table, *, endpoint_url=None, region=None, profile=None,
/// **options)`: the standard AWS chain (or `profile`), the options of
/// `CREATE EXTERNAL TABLE` as keyword arguments (`segments=8`,
/// `consistent_read=True`, `read_capacity=100`, …). Describing the table
/// (and sampling its schema) happens here: a missing table or a bad option
/// raises at once.
#[pyclass(name = "DynamoTable", module = "dynamo_datafusion", frozen)]
struct DynamoTable {
    provider: Arc<DynamoTableProvider>,
}

#[pymethods]
impl DynamoTable {
    #[new]
    #[pyo3(signature = (table, *, endpoint_url=None, region=None, profile=None, **options))]
    fn new(
        py: Python<'_>,
        table: String,
        endpoint_url: Option<String>,
        region: Option<String>,
        profile: Option<String>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let options = table_options(options)?;
        let connection = connection(endpoint_url, region, profile);
        let provider = on_runtime(py, connection, |client| async move {
            DynamoTableProvider::builder(client, &table)
                .options(options)
                .build()
                .await
        });
        Ok(Self {
            provider: Arc::new(provider.map_err(runtime_error)?),
        })
    }

    /// The table's name.
    #[getter]
    fn name(&self) -> String {
        self.provider.meta().name.clone()
    }

    /// The table's columns and Arrow types, as `name: type` lines.
    fn describe(&self) -> String {
        self.provider
            .schema()
            .fields()
            .iter()
            .map(|f| match time_format_of(f) {
                Some(format) => format!("{}: {} ({format})", f.name(), f.data_type()),
                None => format!("{}: {}", f.name(), f.data_type()),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn __repr__(&self) -> String {
        format!("DynamoTable('{}')", self.provider.meta().name)
    }

    /// The provider for datafusion-python, filter pushdown included.
    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = session_codec(&session)?;
        let provider = Arc::clone(&self.provider) as Arc<dyn TableProvider>;
        let ffi = FFI_TableProvider::new_with_ffi_codec(
            provider,
            true,
            Some(RUNTIME.handle().clone()),
            codec,
        );
        PyCapsule::new_with_value(py, ffi, TABLE_PROVIDER)
    }
}

/// Every table of an account and region, for
/// `SessionContext.register_catalog_provider`: its schema `public` holds
/// each table by its exact name (listed now, described and sampled on first
/// use).
///
/// `DynamoCatalog(*, endpoint_url=None, region=None, profile=None, **options)`,
/// the options applying to every table.
#[pyclass(name = "DynamoCatalog", module = "dynamo_datafusion", frozen)]
struct DynamoCatalog {
    catalog: Arc<MemoryCatalogProvider>,
}

#[pymethods]
impl DynamoCatalog {
    #[new]
    #[pyo3(signature = (*, endpoint_url=None, region=None, profile=None, **options))]
    fn new(
        py: Python<'_>,
        endpoint_url: Option<String>,
        region: Option<String>,
        profile: Option<String>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let options = table_options(options)?;
        let connection = connection(endpoint_url, region, profile);
        let schema = on_runtime(py, connection, |client| {
            DynamoSchemaProvider::try_new(client, options)
        });
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog
            .register_schema(
                DEFAULT_SCHEMA,
                Arc::new(OnRuntime(Arc::new(schema.map_err(runtime_error)?))),
            )
            .map_err(runtime_error)?;
        Ok(Self { catalog })
    }

    /// The tables' names.
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .schema(DEFAULT_SCHEMA)
            .map(|s| {
                let mut names = s.table_names();
                names.sort();
                names
            })
            .unwrap_or_default()
    }

    /// The catalog for datafusion-python.
    fn __datafusion_catalog_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = session_codec(&session)?;
        let catalog = Arc::clone(&self.catalog) as Arc<dyn CatalogProvider>;
        let ffi =
            FFI_CatalogProvider::new_with_ffi_codec(catalog, Some(RUNTIME.handle().clone()), codec);
        PyCapsule::new_with_value(py, ffi, CATALOG_PROVIDER)
    }
}

/// The plan of `sql` over `tables` (keyword arguments: name = DynamoTable),
/// with each DynamoDB read as the request it sends — operation, table or
/// index, key condition, filter, projection, estimate, ceiling — as
/// `dynamo-sql` prints `EXPLAIN`. datafusion-python's own `EXPLAIN` shows a
/// foreign plan only by name (`FFI_ExecutionPlan: DynamoExec`). Planned here
/// with the same providers and DataFusion's planner; reads nothing.
///
/// `explain("SELECT * FROM events WHERE userId = 'u1'", events=table)`
#[pyfunction]
#[pyo3(signature = (sql, **tables))]
fn explain(py: Python<'_>, sql: &str, tables: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
    let mut named = Vec::new();
    for (name, table) in tables.into_iter().flat_map(|t| t.iter()) {
        let name: String = name.extract()?;
        let table = table.cast::<DynamoTable>().map_err(|_| {
            PyValueError::new_err(format!("explain: '{name}' is not a DynamoTable"))
        })?;
        named.push((name, Arc::clone(&table.get().provider)));
    }
    let sql = sql.to_string();
    py.detach(|| {
        RUNTIME.block_on(async move {
            let mut config = SessionConfig::new();
            // DynamoDB names are case-sensitive, as the documented sessions are.
            config.options_mut().sql_parser.enable_ident_normalization = false;
            let state = SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .with_physical_optimizer_rule(Arc::new(CapacityCeilingRule))
                .build();
            let ctx = SessionContext::new_with_state(state);
            for (name, provider) in named {
                ctx.register_table(name.as_str(), provider as Arc<dyn TableProvider>)?;
            }
            let plan = ctx.sql(&sql).await?.create_physical_plan().await?;
            Ok::<_, DataFusionError>(readable_plan(&plan))
        })
    })
    .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The extension module (`dynamo_datafusion._internal`).
#[pymodule]
fn _internal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DynamoTable>()?;
    m.add_class::<DynamoCatalog>()?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
