//! Reading the chatgpt.com session cookie from a browser's cookie store (work in progress).
