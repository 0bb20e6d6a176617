//! ringway's control plane: providers, aggregation, validation, and table pushes.
