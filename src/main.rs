use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // The server logs each request; one-shot commands only warn.
    let serving = std::env::args().nth(1).as_deref() == Some("serve");
    let default = if serving {
        "info,sqlx=warn"
    } else {
        "warn,sqlx=error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LADDER_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    ladder::cli::run().await
}
