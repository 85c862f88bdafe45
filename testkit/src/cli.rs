//! Arguments the CLI's tests give the `onem2m-est` binary.

use std::path::Path;

use crate::CSE_ID;

/// `--subject-type cse --subject-id CSE_ID --out OUT`: the test PKI's CSE and the folder of its
/// credentials.
pub fn cse_out_args(out: &Path) -> [String; 6] {
    [
        "--subject-type".into(),
        "cse".into(),
        "--subject-id".into(),
        CSE_ID.into(),
        "--out".into(),
        out.display().to_string(),
    ]
}
