import { runMain } from '@aese/runtime';
import { startAuthenticationService } from './server.js';

runMain('authentication', startAuthenticationService);
