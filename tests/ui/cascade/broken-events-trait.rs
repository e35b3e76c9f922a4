// A borrowed event argument is the only error: renderer code that listens
// with a callback or a stream, and main code that emits, add none.
use ipc_runtime::{events, Connection, Main, Target};

#[events(namespace = "ticks")]
pub trait Ticks {
    fn price(&self, symbol: &String, cents: u64);
    fn halted(&self, symbol: String);
    fn cleared(&self);
}

pub async fn renderer(conn: &Connection) -> u64 {
    let listener = TicksListener::new(conn);
    let _guard = listener.on_halted(|_symbol| {}).await;
    let mut prices = listener.stream_price().await.unwrap();
    let mut halts = listener.stream_halted().await.unwrap();
    let mut cleared = listener.stream_cleared().await.unwrap();
    let halted: Option<String> = halts.recv().await;
    let _: Option<()> = cleared.recv().await;
    let _ = halted;
    match prices.recv().await {
        Some((_symbol, cents)) => cents,
        None => 0,
    }
}

pub fn main_side(main: &Main) {
    TicksEmitter::new(main, Target::All).halted("X".into());
}

fn main() {}
