// Every browser suite in one process, one after another (each starts its own server; models.mjs
// stubs the server instead): two Chromium instances at once would crowd a 2-core machine.
import './run.mjs';
import './collab.mjs';
import './hybrid.mjs';
import './models.mjs';
import './security.mjs';
