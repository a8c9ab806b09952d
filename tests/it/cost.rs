//! `gpushare cost`: GCP_DEPLOYMENT.md's cost table is the command's output on the
//! committed H200 study, and bad prices are refused with their message.

use crate::common::{gpushare, root, stderr, stdout};

#[test]
fn gcp_deployment_table_is_the_commands_output() {
    let doc = std::fs::read_to_string(root().join("GCP_DEPLOYMENT.md")).unwrap();
    let start = doc
        .find("<!-- cost-table: gpushare ")
        .expect("cost-table marker");
    let header_end = start + doc[start..].find(" -->\n").unwrap();
    let command = &doc[start + "<!-- cost-table: gpushare ".len()..header_end];
    let end = doc.find("<!-- /cost-table -->").unwrap();
    let table = &doc[header_end + " -->\n".len()..end];
    let output = gpushare()
        .current_dir(root())
        .args(command.split(' '))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        table,
        stdout(&output),
        "GCP_DEPLOYMENT.md's cost table is stale: paste `gpushare {command}`"
    );
    // The table prices both tenants under every mode of the study.
    assert_eq!(table.matches("| train | train.resnet50 |").count(), 4);
    assert_eq!(table.matches("1M sequences |").count(), 4);
}

#[test]
fn cost_refuses_a_price_that_is_not_positive() {
    let output = gpushare()
        .current_dir(root())
        .args(["cost", "results/h200/2026-11-29-resnet50-train-bert-infer"])
        .arg("--price-per-hour=0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("invalid value '0' for '--price-per-hour <PRICE_PER_HOUR>': must be a positive number, got 0"),
        "{}",
        stderr(&output)
    );
}
