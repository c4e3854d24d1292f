//! The polling task: runs the blocking source on a blocking thread every interval.
