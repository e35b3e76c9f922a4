// Events with unsupported signatures are reported once each; the emitter and
// the listener still have a method per event, so the code that uses them
// adds no error of its own.
use ipc_runtime::{events, Connection, Main, Target};

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed<T>(&self, value: T);
    fn renamed(&self, title: &str);
    fn moved(&self, to: impl ToString);
    async fn deleted(&self, id: u64) -> bool;
}

fn push(main: &Main) {
    let emitter = NotesEventsEmitter::new(main, Target::All);
    emitter.changed(1u8);
    emitter.renamed("title");
    emitter.moved(7);
    emitter.deleted(3);
}

async fn listen(conn: &Connection) {
    let listener = NotesEventsListener::new(conn);
    let _a = listener.on_changed(|value: u8| println!("{value}")).await;
    let _b = listener.on_renamed(|title| println!("{title}")).await;
    let _c = listener.on_deleted(|id| println!("{id}")).await;
}

fn main() {
    let _ = (push, listen);
}
