/** Moved to shared/deepkit/sqlite-patch.ts (the Deepkit seam); kept until every importer loads it from there. */
export * from './deepkit/sqlite-patch';
