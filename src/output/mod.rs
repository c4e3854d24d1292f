//! The `--output` edge (I/O): noticing that the reader of stdout went away
//! (`pipe.rs`) and whether the output file already holds rows (`target.rs`).
//! The encodings themselves are pure and live in `crate::encode`.

pub mod pipe;
pub mod target;
