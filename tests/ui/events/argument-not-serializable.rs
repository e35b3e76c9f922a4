use ipc_runtime::{events, Main, Target};

pub struct Note {
    pub id: u64,
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, note: Note);
}

// Code that uses the emitter and the listener adds no error of its own.
fn push(main: &Main) {
    NotesEventsEmitter::new(main, Target::All).changed(Note { id: 1 });
}

async fn listen(listener: NotesEventsListener) {
    let _guard = listener.on_changed(|note| println!("{}", note.id)).await;
}

fn main() {
    let _ = (push, listen);
}
