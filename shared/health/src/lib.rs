//! Health checks, lag evaluation and the health model shared by every service.
