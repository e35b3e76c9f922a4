//! Shared contract and handlers for the workspace's examples and end-to-end
//! tests (placeholder until the test suite lands).
