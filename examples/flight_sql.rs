//! Embedding the connector's Arrow Flight SQL service: a single-tenant
//! server (every caller reads with this process's AWS chain, through
//! `ChainResolver`) on a loopback port, and a Flight SQL client of the same
//! process running one statement and printing the batches as they stream in.
//!
//! `cargo run --example flight_sql -- 'SELECT count(*) FROM Inventory'` with
//! `DYNAMODB_ENDPOINT` set to a loopback URL (after `scripts/demo.sh` loaded
//! the demo tables, with the same `AWS_ACCESS_KEY_ID` and `AWS_REGION`).
//! A multi-tenant server uses `TenantResolver` instead, as
//! `dynamo-connector serve --flight-listen` does.

use std::process::ExitCode;
use std::sync::Arc;

use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::util::pretty::pretty_format_batches;
use dynamo_connector::{ChainResolver, Connector};
use futures::TryStreamExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(sql: &str) -> Result<(), BoxError> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_string());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let client = dynamo_testkit::local_client_as(&key, &region).await?;
    let connector = Arc::new(Connector::new(Arc::new(ChainResolver::new(client))));

    // The server, until this example ends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dynamo_connector::flight::serve(
        connector,
        listener,
        async {
            let _ = stopped.await;
        },
    ));

    // A client: any bearer token passes a ChainResolver.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut flight = FlightSqlServiceClient::new(channel);
    flight.set_token("single-tenant".to_string());
    let info = flight.execute(sql.to_string(), None).await?;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let batches: Vec<_> = flight.do_get(ticket).await?.try_collect().await?;
        println!("{}", pretty_format_batches(&batches)?);
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let sql = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "SELECT count(*) FROM Inventory".to_string());
    match run(&sql).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flight_sql: {e}");
            ExitCode::FAILURE
        }
    }
}
