//! SQL functions for DynamoDB data: `to_json(value)`, any value as JSON
//! text — a map or list column for a CSV file, a struct for a JSON API.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::json::writer::{EncoderOptions, make_encoder};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::DocSection;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use std::sync::LazyLock;

/// `to_json(value)`: the value as JSON text (structs and maps as objects,
/// lists as arrays, numbers with every digit); NULL stays NULL.
///
/// ```
/// # async fn demo() -> datafusion::error::Result<()> {
/// use datafusion::prelude::SessionContext;
/// let ctx = SessionContext::new();
/// ctx.register_udf(dynamo_datafusion::to_json_udf());
/// let df = ctx.sql("SELECT to_json(named_struct('a', 1, 'b', [1.5, 2.5])) AS j").await?;
/// let batches = df.collect().await?;
/// let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
/// assert!(text.contains(r#"{"a":1,"b":[1.5,2.5]}"#));
/// # Ok(()) }
/// ```
pub fn to_json_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToJson::new())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToJson {
    signature: Signature,
}

impl ToJson {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "Other Functions",
            description: None,
        },
        "The value as JSON text: structs and maps as objects, lists as arrays, numbers \
         with every digit; NULL stays NULL.",
        "to_json(expression)",
    )
    .with_sql_example("SELECT to_json(dimensions) FROM Inventory;")
    .with_argument("expression", "Any value.")
    .build()
});

impl ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        "to_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return exec_err!("to_json takes one argument");
        };
        let array: ArrayRef = value.to_array(args.number_rows)?;
        let field = Arc::new(Field::new("value", array.data_type().clone(), true));
        let options = EncoderOptions::default();
        let mut encoder = make_encoder(&field, array.as_ref(), &options)?;
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
        let mut buf = Vec::new();
        for i in 0..array.len() {
            if array.is_null(i) {
                out.append_null();
                continue;
            }
            buf.clear();
            encoder.encode(i, &mut buf);
            out.append_value(String::from_utf8_lossy(&buf));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
