// Boost.URL's compiled part (percent-decoding in message.cpp), built here: Boost 1.81 on Debian
// ships it as a separate library package (libboost-url1.81-dev) that libboost1.81-dev does not
// pull in, and this one file is all Atelier needs of it.
#include <boost/url/src.hpp>
