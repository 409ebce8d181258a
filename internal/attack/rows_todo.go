package attack

var faultRows, loadRows []Row
