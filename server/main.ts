import { createBrokerApp } from './app';

/**
 * The broker's command line: `start`, `peers`, `token:create`, `token:revoke`, `token:list`, `audit`.
 * Settings come from SWITCHBOARD_* environment variables (see server/config.ts) and the flags of `start`.
 */
createBrokerApp()
    .loadConfigFromEnv({ prefix: 'SWITCHBOARD_' })
    .run()
    .catch(error => {
        console.error(error instanceof Error ? error.message : error);
        process.exit(1);
    });
