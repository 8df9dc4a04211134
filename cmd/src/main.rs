//! The `cl2` command.

fn main() {
    println!("cl2");
}
