/** The repository's tests import the suite from here; its source is testing/ (the @switchboard/testing package). */
export * from '@switchboard/testing';
