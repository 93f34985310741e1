"""The collector: fetch -> parse -> validate -> store, on a schedule replicas share."""
