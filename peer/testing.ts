/** The repository's tests import the test kit from here; its source is testing/ (the @switchboard/testing package). */
export * from '@switchboard/testing/test-kit';
