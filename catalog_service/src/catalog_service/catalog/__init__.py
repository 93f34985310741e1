"""What is published: response caching, the human pages, discovery documents."""
