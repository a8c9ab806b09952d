mod load;
mod serve;
mod support;
