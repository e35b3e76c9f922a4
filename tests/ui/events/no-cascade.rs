// A broken events trait reports its own mistake, and nothing else: main
// code that emits, renderer code that listens and an `expose!` API that
// lists the events all keep compiling against stand-ins.
use ipc_runtime::{events, expose, Connection, Main, Target};

#[events(namespace = "my notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
    fn renamed(&self, id: u64, title: String);
}

expose! {
    pub struct ViewerApi {
        events: NotesEvents { changed, renamed },
    }
}

fn build() -> Result<Main, ipc_runtime::IpcError> {
    Main::builder().events::<NotesEventsContract>().build()
}

fn push(main: &Main) -> usize {
    let emitter = NotesEventsEmitter::new(main, Target::All);
    emitter.changed(1) + emitter.renamed(2, "two".into())
}

async fn listen(conn: &Connection, api: ViewerApi) {
    let listener = NotesEventsListener::new(conn);
    let _a = listener.on_changed(|id| println!("{id}")).await;
    let _b = api.events.on_renamed(|id, title| println!("{id}: {title}")).await;
    let _ = NotesEventsContract::CHANGED;
}

fn main() {
    let _ = (build, push, listen);
}
