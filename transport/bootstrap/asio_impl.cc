// Boost.Asio's non-template implementation, compiled once for this library
// (BOOST_ASIO_SEPARATE_COMPILATION) instead of in every file that uses Asio: faster builds.
// GCC's -Wnull-dereference reports false positives inside Asio's scheduler when it is inlined
// at -O2 (boost/asio/detail/impl/scheduler.ipp); they are silenced for Asio's code only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/impl/src.hpp>
#pragma GCC diagnostic pop
