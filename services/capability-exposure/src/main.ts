import { runMain } from '@aese/runtime';
import { startCapabilityExposureService } from './server.js';

runMain('capability-exposure', startCapabilityExposureService);
