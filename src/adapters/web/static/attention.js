// attention.js: filled in by issue 12 work.
