//! The `tongdai` binary.

fn main() {
    eprintln!("tongdai: not yet implemented");
    std::process::exit(2);
}
